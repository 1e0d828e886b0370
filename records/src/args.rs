//! Argument builders: the command lines `lab` (or any driver) gives the tools,
//! built from typed values instead of strings assembled by hand. Each tool's tests
//! round-trip its builder: builder -> argv -> the tool's own clap parser -> the
//! same values, so a renamed flag fails a test instead of a run.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use profiles::units::{Rate, format_mac};

use crate::generator::Engine;

/// An argument vector being built: flags with and without values.
#[derive(Debug, Default)]
struct Argv(Vec<String>);

impl Argv {
    fn kv(&mut self, flag: &str, value: impl ToString) {
        self.0.push(flag.to_owned());
        self.0.push(value.to_string());
    }
    fn opt(&mut self, flag: &str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.kv(flag, v);
        }
    }
    fn flag(&mut self, flag: &str, on: bool) {
        if on {
            self.0.push(flag.to_owned());
        }
    }
}

/// A duration as every tool parses it back exactly (`profiles::units::parse_duration`).
pub fn duration_arg(d: Duration) -> String {
    format!("{}ns", d.as_nanos())
}

/// `gen`'s command line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gen {
    /// `--netns`.
    pub netns: Option<String>,
    /// `--iface`.
    pub iface: String,
    /// `--profile`.
    pub profile: String,
    /// `--engine` (gen's default when `None`).
    pub engine: Option<Engine>,
    /// `--rate` (`None`: as fast as possible).
    pub rate: Option<Rate>,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--count`.
    pub count: Option<u64>,
    /// `--queues`.
    pub queues: Option<u32>,
    /// `--dst-ip`.
    pub dst_ip: Option<Ipv4Addr>,
    /// `--dst-mac`.
    pub dst_mac: Option<[u8; 6]>,
    /// `--interval`.
    pub interval: Option<Duration>,
    /// `--no-rx`.
    pub no_rx: bool,
    /// `--force`.
    pub force: bool,
    /// `--output json` (text otherwise).
    pub json: bool,
}

impl Gen {
    /// The arguments (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::default();
        a.opt("--netns", self.netns.as_ref());
        a.kv("--iface", &self.iface);
        a.kv("--profile", &self.profile);
        a.opt("--engine", self.engine.map(Engine::as_str));
        a.opt("--rate", self.rate);
        a.opt("--duration", self.duration.map(duration_arg));
        a.opt("--count", self.count);
        a.opt("--queues", self.queues);
        a.opt("--dst-ip", self.dst_ip);
        a.opt("--dst-mac", self.dst_mac.map(format_mac));
        a.opt("--interval", self.interval.map(duration_arg));
        a.opt("--output", self.json.then_some("json"));
        a.flag("--no-rx", self.no_rx);
        a.flag("--force", self.force);
        a.0
    }
}

/// How tstamp matches requests and responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TstampMatch {
    /// DNS (source/destination port, ID).
    #[default]
    Dns,
    /// gen's probe sequence numbers.
    Seq,
}

/// `tstamp`'s command line (live capture).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tstamp {
    /// `--netns`.
    pub netns: Option<String>,
    /// `--iface`.
    pub iface: String,
    /// `--match`.
    pub match_mode: TstampMatch,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--hdrh FILE`.
    pub hdrh: Option<PathBuf>,
    /// `--hist-csv FILE`.
    pub hist_csv: Option<PathBuf>,
    /// `--plot FILE.svg`.
    pub plot: Option<PathBuf>,
    /// `--output json` (text otherwise).
    pub json: bool,
}

impl Tstamp {
    /// The arguments (without the program name).
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::default();
        a.opt("--netns", self.netns.as_ref());
        a.kv("--iface", &self.iface);
        a.kv(
            "--match",
            match self.match_mode {
                TstampMatch::Dns => "dns",
                TstampMatch::Seq => "seq",
            },
        );
        a.opt("--duration", self.duration.map(duration_arg));
        a.opt("--hdrh", self.hdrh.as_ref().map(|p| p.display()));
        a.opt("--hist-csv", self.hist_csv.as_ref().map(|p| p.display()));
        a.opt("--plot", self.plot.as_ref().map(|p| p.display()));
        a.opt("--output", self.json.then_some("json"));
        a.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_back_exactly() {
        for d in [Duration::from_millis(2500), Duration::from_nanos(1), Duration::from_secs(30)] {
            assert_eq!(profiles::units::parse_duration(&duration_arg(d)), Ok(d));
        }
    }
}
