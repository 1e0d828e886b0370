//! The receive engine: capture back ends (AF_PACKET TPACKET_V3, and AF_XDP over
//! [`af_xdp`]) with per-packet timestamps (NIC hardware or kernel software), drop
//! counters, per-flow and probe accounting, and pcapng writing; plus the small shared
//! pieces the capturing tools use (`--netns`, durations, the stop flag, atomic files).

pub mod af_xdp;
pub mod afpacket;
pub mod afxdp;
pub mod atomic_file;
pub mod capture;
pub mod cli;
pub mod counters;
pub mod hwts;
pub mod netns;
pub mod pcapng;
pub mod stop;
pub mod units;

pub use capture::{
    Backend, Capture, CaptureError, CaptureOptions, Clock, ClockMode, Drops, Frame, TsKind,
};
