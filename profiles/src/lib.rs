//! Workloads and wire formats: the one source of truth that `gen`, `dut`, `sink` and
//! `tstamp` share.
//!
//! - [`profile`]: the TOML workloads (shipped ones embedded, user files by path), read in
//!   two stages into a resolved [`Profile`] with file/line/key errors.
//! - [`template`]: a profile as frame bytes plus per-packet patches (no allocation per
//!   packet), the generator's hot path.
//! - [`names`]: the DNS name sets and their A records, so the DUT's cache holds exactly
//!   what the generator asks.
//! - [`units`]: rates, durations, MAC and IPv4 addresses and prefixes: one parser each,
//!   for every tool's command line, the profiles and the experiment files.
//! - [`toml_lines`]: TOML files read with line numbers (`FILE:LINE: KEY: problem`), the
//!   one reader of profiles and of `lab`'s experiment files.
//! - [`wire`]: Ethernet/IPv4/UDP reading (etherparse), DNS and the probe payload.
//!
//! No I/O here, except [`Profile::load`] reading a profile file the user names.

pub mod names;
pub mod profile;
pub mod template;
pub mod toml_lines;
pub mod units;
pub mod wire;

pub use names::NameSet;
pub use profile::{Profile, ProfileError};
pub use template::{Template, TemplateOptions};
