//! Argument builders: the command lines `lab` (or any driver) gives the tools,
//! built from typed values instead of strings assembled by hand. Each tool's tests
//! round-trip its builder: builder -> argv -> the tool's own clap parser -> the
//! same values, so a renamed flag fails a test instead of a run.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use profiles::units::{Rate, format_mac};

use crate::generator::Engine;

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
        let mut a = Vec::new();
        let mut kv = |k: &str, v: String| {
            a.push(k.to_owned());
            a.push(v);
        };
        if let Some(n) = &self.netns {
            kv("--netns", n.clone());
        }
        kv("--iface", self.iface.clone());
        kv("--profile", self.profile.clone());
        if let Some(e) = self.engine {
            kv("--engine", e.as_str().to_owned());
        }
        if let Some(r) = self.rate {
            kv("--rate", r.to_string());
        }
        if let Some(d) = self.duration {
            kv("--duration", duration_arg(d));
        }
        if let Some(c) = self.count {
            kv("--count", c.to_string());
        }
        if let Some(q) = self.queues {
            kv("--queues", q.to_string());
        }
        if let Some(ip) = self.dst_ip {
            kv("--dst-ip", ip.to_string());
        }
        if let Some(m) = self.dst_mac {
            kv("--dst-mac", format_mac(m));
        }
        if let Some(i) = self.interval {
            kv("--interval", duration_arg(i));
        }
        if self.json {
            kv("--output", "json".into());
        }
        if self.no_rx {
            a.push("--no-rx".into());
        }
        if self.force {
            a.push("--force".into());
        }
        a
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
        let mut a = Vec::new();
        let mut kv = |k: &str, v: String| {
            a.push(k.to_owned());
            a.push(v);
        };
        if let Some(n) = &self.netns {
            kv("--netns", n.clone());
        }
        kv("--iface", self.iface.clone());
        kv(
            "--match",
            match self.match_mode {
                TstampMatch::Dns => "dns",
                TstampMatch::Seq => "seq",
            }
            .into(),
        );
        if let Some(d) = self.duration {
            kv("--duration", duration_arg(d));
        }
        for (k, p) in [("--hdrh", &self.hdrh), ("--hist-csv", &self.hist_csv), ("--plot", &self.plot)] {
            if let Some(p) = p {
                kv(k, p.display().to_string());
            }
        }
        if self.json {
            kv("--output", "json".into());
        }
        a
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
