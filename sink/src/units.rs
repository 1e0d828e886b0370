//! The units the tools share on their command lines; parsed once, in `profiles`.

pub use profiles::units::parse_duration;
