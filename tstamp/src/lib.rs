//! `tstamp`: the timestamping sink for a mirror port. It sees every request and every
//! response with a timestamp from one clock (live through sink's capture back ends, or a
//! pcap/pcapng file), pairs them ([`matcher`]), and reports response times as
//! distributions ([`stats`], [`session`]) in text, JSON lines, an HDR histogram interval
//! log, a histogram CSV and SVG plots ([`output`]).

pub mod cli;
pub mod matcher;
pub mod output;
/// Offline captures: the shared reader (also gen's `--pcap`).
pub use capfile as reader;
pub mod session;
pub mod stats;
pub mod synth;

pub use matcher::{Counters, Match, MatchMode, Matcher};
pub use session::{FinalRecord, IntervalRecord, Session, SessionOptions};
