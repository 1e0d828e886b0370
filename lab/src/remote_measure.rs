//! The measurements of `lab run EXPERIMENT --testbed FILE` on testbed hosts
//! over ssh, beside what [`crate::remote`] does (where a tool runs): which
//! experiments a testbed can run (refused up front with the experiment file's
//! `FILE:LINE: KEY`), the loss ledger from each host's data-interface
//! counters (`/proc/net/dev` read over the host's ssh connection, in its
//! namespace when the testbed file gives one), the DUT host's CPU counters,
//! and the files a remote tool writes (tstamp's HDR log) fetched back over the
//! same connection.
//!
//! The ledger over ssh is shorter than the lab's: the testbed's switch (or
//! cables) between the hosts is not observed, so a hop is the sending host's
//! transmit counter and the receiving host's receive counter, and its stage
//! says so. The mirror chain is what gen's and the DUT's interfaces sent (what
//! the switch received from them and mirrors) -> the monitor's interface ->
//! tstamp.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::experiment::{Experiment, Measure, Param, Source, Topo};
use crate::ledger::{self, Chain, Hop, Place, Port, Snapshot, Stage};
use crate::remote::{RemoteHost, Site, shell_quote};
use crate::testbed_file::TestbedFile;

/// The hosts of a run over ssh, after pre-flight.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// The generator host.
    pub r#gen: Arc<RemoteHost>,
    /// The DUT host.
    pub dut: Arc<RemoteHost>,
    /// The monitor on the mirror port, if the testbed has one.
    pub mon: Option<Arc<RemoteHost>>,
}

/// What a hop's stages say about the part of the path nobody counts.
pub const UNOBSERVED: &str = "the testbed's switch between them is not observed";

impl Hosts {
    fn all(&self) -> Vec<&Arc<RemoteHost>> {
        let mut v = vec![&self.r#gen, &self.dut];
        v.extend(self.mon.as_ref());
        v
    }

    /// Every host's data-interface counters, keyed (role, interface).
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut m = std::collections::BTreeMap::new();
        for h in self.all() {
            let e = &h.endpoint;
            let text = h
                .shell(&h.in_netns("cat /proc/net/dev"))
                .context("read the interface counters")?;
            let c = xdplayer::iface::parse_proc_net_dev(&text)
                .remove(&e.iface)
                .with_context(|| {
                    format!("{}: no interface {} in /proc/net/dev", e.display(), e.iface)
                })?;
            m.insert((e.role.clone(), e.iface.clone()), c);
        }
        Ok(Snapshot(m))
    }

    fn port(h: &RemoteHost) -> Port {
        Port::new(h.endpoint.role.clone(), h.endpoint.iface.clone())
    }

    /// gen -> DUT -> gen, one unobserved hop each way (no mirror: see
    /// [`Hosts::finish_ledger`]).
    pub fn path(&self) -> ledger::Path {
        let (g, d) = (Self::port(&self.r#gen), Self::port(&self.dut));
        ledger::Path {
            request: vec![Hop {
                from: g.clone(),
                to: d.clone(),
                place: Place::Dut,
            }],
            answer: vec![Hop {
                from: d,
                to: g,
                place: Place::Generator,
            }],
            mirror: None,
        }
    }

    /// Names the unobserved hops in `l` (built over [`Hosts::path`]) and adds
    /// the mirror chain: gen's and the DUT's interfaces sent -> the monitor's
    /// interface received -> tstamp captured (`captured`).
    pub fn finish_ledger(&self, l: &mut ledger::Ledger, d: &Snapshot, captured: Option<u64>) {
        for st in &mut l.stages {
            if st.chain != Chain::Mirror && st.name.ends_with(" (sent)") {
                st.name = st
                    .name
                    .replace(" (sent)", &format!(" (sent; {UNOBSERVED})"));
            }
        }
        let Some(m) = &self.mon else {
            return;
        };
        let get = |h: &RemoteHost| d.get(&h.endpoint.role, &h.endpoint.iface);
        let mut push = |name: String, packets| {
            l.stages.push(Stage {
                chain: Chain::Mirror,
                name,
                place: Place::Monitor,
                packets,
            })
        };
        push(
            format!(
                "to mirror ({} and {} sent; {UNOBSERVED})",
                self.r#gen.endpoint.iface, self.dut.endpoint.iface
            ),
            get(&self.r#gen).tx_packets + get(&self.dut).tx_packets,
        );
        push(format!("{} received", m.endpoint.iface), get(m).rx_packets);
        if let Some(c) = captured {
            push("tstamp captured".into(), c);
        }
    }

    /// Where tstamp runs: the monitor host and its interface.
    pub fn monitor(&self) -> Result<(Site, String)> {
        let m = self.mon.as_ref().context(
            "the testbed file has no [mon] host (response times are measured on the mirror port)",
        )?;
        Ok((Site::Remote(m.clone()), m.endpoint.iface.clone()))
    }

    /// A path on the monitor host for a file tstamp writes (`NAME` in /tmp,
    /// made unique by this process's id).
    pub fn monitor_file(name: &str) -> String {
        format!("/tmp/lab-{}-{name}", std::process::id())
    }

    /// Copies `remote` from the monitor host into `local` over its ssh
    /// connection, and removes it there.
    pub fn fetch_from_monitor(&self, remote: &str, local: &Path) -> Result<()> {
        let m = self.mon.as_ref().context("no [mon] host")?;
        let q = shell_quote(remote);
        let text = m
            .shell(&format!("cat {q} && rm -f {q}"))
            .with_context(|| format!("fetch {remote} from {}", m.endpoint.display()))?;
        std::fs::write(local, text).with_context(|| format!("write {}", local.display()))
    }

    /// The DUT host's CPU time in interrupt and softirq context (its
    /// /proc/stat over ssh; see [`crate::tools::machine_softirq_ns`]).
    pub fn dut_softirq_ns(&self) -> Option<f64> {
        let text = self.dut.shell("cat /proc/stat").ok()?;
        crate::tools::softirq_ns_of(&text)
    }
}

/// The line (1-based) of `key` in the experiment's text: inside the block of
/// series `series` if it sets it there, else the first line that sets it
/// (the top of the file or its table); 1 if none does.
pub fn key_line(text: &str, series: Option<&str>, key: &str) -> usize {
    let sets = |l: &str| {
        l.trim_start()
            .strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='))
    };
    let lines: Vec<&str> = text.lines().collect();
    if let Some(name) = series {
        // The [[series]] blocks: from their header to the next table header.
        let mut start = None;
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            if t.starts_with('[') {
                start = t.starts_with("[[series]]").then_some(i);
                continue;
            }
            let named = t.strip_prefix("name").is_some_and(|r| {
                r.trim_start()
                    .strip_prefix('=')
                    .is_some_and(|v| v.trim().trim_matches('"') == name)
            });
            if let Some(s) = start
                && named
            {
                let end = lines[s + 1..]
                    .iter()
                    .position(|l| l.trim_start().starts_with('['))
                    .map_or(lines.len(), |p| s + 1 + p);
                if let Some(k) = (s + 1..end).find(|&k| sets(lines[k])) {
                    return k + 1;
                }
            }
        }
    }
    lines.iter().position(|l| sets(l)).map_or(1, |i| i + 1)
}

/// What the testbed of `file` cannot run in `exp`: the first such thing as one
/// line `EXPERIMENT:LINE: KEY: lab run --testbed: ...`.
pub fn refuse(exp: &Experiment, file: &TestbedFile) -> Result<()> {
    let at = |series: Option<&str>, key: &str| {
        format!("{}:{}: {key}", exp.origin, key_line(&exp.text, series, key))
    };
    if exp.topology == Topo::Tenants {
        bail!(
            "{}: lab run --testbed: not supported yet: the tenants topology (a testbed file has no tenant hosts)",
            at(None, "topology")
        );
    }
    match exp.parameter {
        Param::NeighbourChecksums => bail!(
            "{}: lab run --testbed: not supported yet: a neighbour sweep (a testbed file has no neighbour host)",
            at(None, "parameter")
        ),
        Param::Queues => bail!(
            "{}: lab run --testbed: not supported yet: a queue sweep (ethtool -L on the hosts)",
            at(None, "parameter")
        ),
        Param::FrameSize => bail!(
            "{}: lab run --testbed: not supported yet: a frame-size sweep",
            at(None, "parameter")
        ),
        _ => {}
    }
    for s in &exp.series {
        let name = Some(s.name.as_str());
        if s.neighbour_checksums.is_some() {
            bail!(
                "{}: lab run --testbed: not supported yet: series `{}` has a busy neighbour (a testbed file has no neighbour host)",
                at(name, "neighbour_checksums"),
                s.name
            );
        }
        if s.source != Source::Gen {
            bail!(
                "{}: lab run --testbed: not supported yet: series `{}`: only gen drives a testbed",
                at(name, "source"),
                s.name
            );
        }
        if s.dst_ip.is_some() {
            bail!(
                "{}: lab run --testbed: not supported yet: series `{}`: another destination address",
                at(name, "dst_ip"),
                s.name
            );
        }
        match s.measure {
            Measure::DutRate | Measure::AnswerRate => {}
            Measure::ResponseTime if file.mon.is_none() => bail!(
                "{}: lab run --testbed: series `{}` measures response times on the mirror port, and {} has no [mon] host",
                at(name, "measure"),
                s.name,
                file.origin
            ),
            Measure::ResponseTime => {}
            Measure::Ndr | Measure::UpdateRate => bail!(
                "{}: lab run --testbed: not supported yet: series `{}`: measure = \"{}\"",
                at(name, "measure"),
                s.name,
                if s.measure == Measure::Ndr {
                    "ndr"
                } else {
                    "update-rate"
                }
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EXP: &str = r#"name = "x"
measure = "dut-rate"
topology = "switched"

[sweep]
parameter = "rate"

[[series]]
name = "a"
mode = "native"

[[series]]
name = "b"
measure = "ndr"
"#;

    #[test]
    fn a_key_is_found_in_its_series_or_at_the_top() {
        assert_eq!(key_line(EXP, Some("b"), "measure"), 14);
        assert_eq!(key_line(EXP, Some("a"), "measure"), 2);
        assert_eq!(key_line(EXP, None, "topology"), 3);
        assert_eq!(key_line(EXP, None, "parameter"), 6);
        assert_eq!(key_line(EXP, None, "nothing"), 1);
    }
}
