//! The receive engine: capture back ends (AF_PACKET TPACKET_V3, and AF_XDP over the
//! `xdp-layer` crate, `xdplayer`) with per-packet timestamps (NIC hardware or kernel
//! software), drop counters, per-flow and probe accounting, and pcapng writing; plus
//! the small pieces the capturing tools share (durations, the stop flag, probe-stream
//! quality). Namespace
//! entry, clocks and atomic files live in `xdplayer`.

pub mod afpacket;
pub mod afxdp;
pub mod capture;
pub mod cli;
pub mod counters;
pub mod hwts;
pub mod pcapng;
pub mod stop;
pub mod streams;

pub use capture::{
    Backend, Capture, CaptureError, CaptureOptions, Clock, ClockMode, Drops, Frame, TsKind,
};
