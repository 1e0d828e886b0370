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
    /// The generator hosts, in the file's order.
    pub gens: Vec<Arc<RemoteHost>>,
    /// The DUT host.
    pub dut: Arc<RemoteHost>,
    /// The monitor on the mirror port, if the testbed has one.
    pub mon: Option<Arc<RemoteHost>>,
}

/// What a hop's stages say about the part of the path nobody counts.
pub const UNOBSERVED: &str = "the testbed's switch between them is not observed";

impl Hosts {
    fn all(&self) -> Vec<&Arc<RemoteHost>> {
        let mut v: Vec<&Arc<RemoteHost>> = self.gens.iter().collect();
        v.push(&self.dut);
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
        if self.gens.len() > 1 {
            // The generator side of the chains is every generator host together.
            let mut sum = ledger::IfCounters::default();
            for g in &self.gens {
                let c = m
                    .get(&(g.endpoint.role.clone(), g.endpoint.iface.clone()))
                    .copied()
                    .unwrap_or_default();
                sum.rx_packets += c.rx_packets;
                sum.rx_dropped += c.rx_dropped;
                sum.tx_packets += c.tx_packets;
                sum.tx_dropped += c.tx_dropped;
            }
            let g = self.gen_port();
            m.insert((g.netns, g.iface), sum);
        }
        Ok(Snapshot(m))
    }

    fn port(h: &RemoteHost) -> Port {
        Port::new(h.endpoint.role.clone(), h.endpoint.iface.clone())
    }

    /// The generator side: the one host's interface, or with several hosts
    /// their interfaces summed ([`Hosts::snapshot`] adds that entry).
    fn gen_port(&self) -> Port {
        match self.gens.as_slice() {
            [g] => Self::port(g),
            gens => Port::new(
                "gen[*]".to_owned(),
                format!(
                    "{} ({} generator hosts)",
                    gens.first().map_or("", |g| g.endpoint.iface.as_str()),
                    gens.len()
                ),
            ),
        }
    }

    /// gen -> DUT -> gen, one unobserved hop each way (no mirror: see
    /// [`Hosts::finish_ledger`]).
    pub fn path(&self) -> ledger::Path {
        let (g, d) = (self.gen_port(), Self::port(&self.dut));
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
                self.gen_port().iface,
                self.dut.endpoint.iface
            ),
            self.gens.iter().map(|g| get(g).tx_packets).sum::<u64>() + get(&self.dut).tx_packets,
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

    /// Copies `remote` from the monitor host into `local` over its ssh
    /// connection, and removes it there.
    pub fn fetch_from_monitor(&self, remote: &str, local: &Path) -> Result<()> {
        let m = self.mon.as_ref().context("no [mon] host")?;
        let text = m.fetch(remote)?;
        std::fs::write(local, text).with_context(|| format!("write {}", local.display()))
    }

    /// The DUT host's CPU time in interrupt and softirq context (its
    /// /proc/stat over ssh; see [`crate::tools::machine_softirq_ns`]).
    pub fn dut_softirq_ns(&self) -> Option<f64> {
        let text = self.dut.shell("cat /proc/stat").ok()?;
        crate::tools::softirq_ns_of(&text)
    }
}

/// Before any traffic: the peers the experiment's series run (trafgen,
/// dnsperf) are on the generator host they run on (the first); one line
/// naming the host and the missing program otherwise.
pub fn check_peers(hosts: &Hosts, exp: &Experiment) -> Result<()> {
    let Some(g) = hosts.gens.first() else {
        return Ok(());
    };
    for p in exp.peers() {
        let (Some(prog), Some(pkg)) = (p.program(), p.package()) else {
            continue;
        };
        if !g.has_program(prog)? {
            bail!(
                "{}: peer `{prog}` is not installed there, and {} runs it: install the package `{pkg}` on that host",
                g.endpoint.display(),
                exp.origin
            );
        }
    }
    Ok(())
}

/// An interface's channels as `ethtool -l` prints them (`None`: n/a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Channels {
    /// RX channels.
    pub rx: Option<u32>,
    /// TX channels.
    pub tx: Option<u32>,
    /// Combined channels.
    pub combined: Option<u32>,
}

impl Channels {
    /// Queues: the combined channels where the interface has them (a NIC),
    /// else the fewer of RX and TX (veth).
    pub fn queues(&self) -> u32 {
        match self.combined {
            Some(c) if c > 0 => c,
            _ => self.rx.unwrap_or(0).min(self.tx.unwrap_or(0)),
        }
    }

    /// `ethtool -L` arguments for `n` queues on an interface whose maximums
    /// are `self`.
    fn set_args(&self, n: u32) -> String {
        match self.combined {
            Some(c) if c > 0 => format!("combined {n}"),
            _ => format!("rx {n} tx {n}"),
        }
    }

    /// `ethtool -L` arguments that put back exactly `self` (current settings).
    fn restore_args(&self) -> String {
        let mut v = Vec::new();
        for (k, x) in [
            ("rx", self.rx),
            ("tx", self.tx),
            ("combined", self.combined),
        ] {
            if let Some(x) = x.filter(|x| *x > 0) {
                v.push(format!("{k} {x}"));
            }
        }
        v.join(" ")
    }
}

/// (maximums, current settings) from `ethtool -l IFACE`'s output.
pub fn parse_channels(text: &str) -> Option<(Channels, Channels)> {
    let mut max = None;
    let mut cur = None;
    let mut section: Option<&mut Option<Channels>> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Pre-set maximums") {
            section = Some(&mut max);
            continue;
        }
        if t.starts_with("Current hardware settings") {
            section = Some(&mut cur);
            continue;
        }
        let Some(sec) = section.as_deref_mut() else {
            continue;
        };
        let Some((k, v)) = t.split_once(':') else {
            continue;
        };
        let c = sec.get_or_insert_with(Channels::default);
        let v = v.trim().parse::<u32>().ok();
        match k.trim() {
            "RX" => c.rx = v,
            "TX" => c.tx = v,
            "Combined" => c.combined = v,
            _ => {}
        }
    }
    Some((max?, cur?))
}

/// A queue sweep on a testbed: the DUT's and gen's data interfaces set with
/// `ethtool -L` over ssh for each point, and put back to what they were
/// when dropped (at the end of the run, on an error and on Ctrl-C).
#[derive(Debug)]
pub struct QueueSweep {
    /// (host, its maximums, its settings before the sweep).
    ifaces: Vec<(Arc<RemoteHost>, Channels, Channels)>,
}

fn ethtool_l(h: &RemoteHost) -> Result<(Channels, Channels)> {
    let e = &h.endpoint;
    let text = h.shell(&h.in_netns(&format!("ethtool -l {}", shell_quote(&e.iface))))?;
    parse_channels(&text).with_context(|| {
        format!(
            "{}: `ethtool -l {}` printed no channel settings",
            e.display(),
            e.iface
        )
    })
}

impl QueueSweep {
    /// Reads the channels of the DUT's and gen's interfaces; one line naming
    /// the host, its interface and its maximum (after `at`, the experiment's
    /// `FILE:LINE: KEY`, and ending with `wants`, what asks for `most`
    /// queues) when one cannot have `most` queues.
    pub fn open(hosts: &Hosts, most: u32, at: &str, wants: &str) -> Result<QueueSweep> {
        let mut ifaces = Vec::new();
        for h in std::iter::once(&hosts.dut).chain(&hosts.gens) {
            let (max, cur) = ethtool_l(h)?;
            if max.queues() < most {
                let e = &h.endpoint;
                bail!(
                    "{at}: lab run --testbed: {}: {} has at most {} queue(s) (`ethtool -l`), {wants} {most}",
                    e.display(),
                    e.iface,
                    max.queues()
                );
            }
            ifaces.push((h.clone(), max, cur));
        }
        Ok(QueueSweep { ifaces })
    }

    /// Sets `n` queues on every interface of the sweep.
    pub fn set(&self, n: u32) -> Result<()> {
        for (h, max, _) in &self.ifaces {
            let (_, now) = ethtool_l(h)?;
            if now.queues() == n {
                continue;
            }
            let e = &h.endpoint;
            h.shell(&h.in_netns(&format!(
                "ethtool -L {} {}",
                shell_quote(&e.iface),
                max.set_args(n)
            )))?;
        }
        Ok(())
    }
}

impl Drop for QueueSweep {
    fn drop(&mut self) {
        for (h, _, before) in &self.ifaces {
            let e = &h.endpoint;
            if ethtool_l(h).is_ok_and(|(_, now)| now == *before) {
                continue;
            }
            let line = format!(
                "ethtool -L {} {}",
                shell_quote(&e.iface),
                before.restore_args()
            );
            if let Err(err) = h.shell(&h.in_netns(&line)) {
                eprintln!(
                    "lab run: could not restore the queues of {}: {err:#}",
                    e.display()
                );
            }
        }
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
                // Not set in the series: where the file sets it, else the
                // series' own header (what lacks it).
                return lines.iter().position(|l| sets(l)).map_or(s + 1, |i| i + 1);
            }
        }
    }
    lines.iter().position(|l| sets(l)).map_or(1, |i| i + 1)
}

/// What the testbed of `file` cannot run in `exp`: the first such thing as one
/// line `EXPERIMENT:LINE: KEY: lab run --testbed: ...`. A series that sends
/// unpaced (gen's maximum rate) onto real hosts is refused unless `unpaced_ok`
/// (`lab run --rate max`).
pub fn refuse(exp: &Experiment, file: &TestbedFile, unpaced_ok: bool) -> Result<()> {
    let at = |series: Option<&str>, key: &str| {
        format!("{}:{}: {key}", exp.origin, key_line(&exp.text, series, key))
    };
    let tenants = exp.topology == Topo::Tenants;
    if tenants {
        refuse_tenants(exp, file, &at)?;
    }
    if exp.parameter == Param::NeighbourChecksums && !tenants {
        bail!(
            "{}: lab run --testbed: not supported yet: a neighbour sweep outside the tenants topology (its busy neighbour is a stand-in lab of its own on this machine; a testbed file has no such host)",
            at(None, "parameter")
        );
    }
    for s in &exp.series {
        let name = Some(s.name.as_str());
        if s.neighbour_checksums.is_some() && !tenants {
            bail!(
                "{}: lab run --testbed: not supported yet: series `{}` has a busy neighbour outside the tenants topology (a stand-in lab of its own; a testbed file has no such host)",
                at(name, "neighbour_checksums"),
                s.name
            );
        }
        if s.source != Source::Gen && file.gens.len() > 1 {
            bail!(
                "{}: lab run --testbed: not supported yet: series `{}`: {} runs on one generator host, and {} has {} [[gen]]",
                at(name, "source"),
                s.name,
                s.source.program().unwrap_or("the peer"),
                file.origin,
                file.gens.len()
            );
        }
        let paced = s.rate.is_some()
            || exp.parameter == Param::Rate
            || matches!(s.measure, Measure::Ndr | Measure::UpdateRate);
        if !paced && !unpaced_ok {
            bail!(
                "{}: lab run --testbed: series `{}` sends at gen's maximum rate (unpaced) onto real hosts: pass --rate max to allow it, or give the series a rate",
                at(name, "rate"),
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
            Measure::Ndr
                if file.mon.is_none() && exp.ndr.as_ref().is_some_and(|n| n.p99_us.is_some()) =>
            {
                bail!(
                    "{}: lab run --testbed: the search's p99 bound needs response times on the mirror port, and {} has no [mon] host",
                    at(None, "p99_us"),
                    file.origin
                )
            }
            Measure::ResponseTime | Measure::Ndr | Measure::UpdateRate => {}
        }
    }
    Ok(())
}

/// What the tenants topology needs of a testbed file: `[[tenant]]` entries
/// for every tenant a series addresses or runs its program in, and for a busy
/// neighbour (tenant 2) a second `[[gen]]` for its flood. `at(series, key)` is
/// the experiment's `FILE:LINE: KEY`.
fn refuse_tenants(
    exp: &Experiment,
    file: &TestbedFile,
    at: &dyn Fn(Option<&str>, &str) -> String,
) -> Result<()> {
    if file.tenants.is_empty() {
        bail!(
            "{}: lab run --testbed: the tenants topology needs the DUT host's tenants, and {} has no [[tenant]] (give one per tenant: ssh, iface, tools, ip, mac; `lab up --topology ssh-tenants` writes such a file)",
            at(None, "topology"),
            file.origin
        );
    }
    let have = file.tenants.len();
    for s in &exp.series {
        let name = Some(s.name.as_str());
        let busy = s.neighbour_checksums.is_some() || exp.parameter == Param::NeighbourChecksums;
        let wants = [
            ("tenant", s.tenant),
            ("dst_tenant", s.dst_tenant),
            ("neighbour_at", if busy { 2 } else { 0 }),
        ];
        for (key, t) in wants {
            if usize::from(t) > have {
                bail!(
                    "{}: lab run --testbed: series `{}` needs tenant {t}, and {} has {have} [[tenant]]",
                    at(name, key),
                    s.name,
                    file.origin
                );
            }
        }
        if busy && file.gens.len() < 2 {
            bail!(
                "{}: lab run --testbed: series `{}` floods a busy neighbour (tenant 2) from a second generator host, and {} has one [[gen]] (add a second: the host or port cabled to the DUT host's second_iface)",
                at(name, "neighbour_rate"),
                s.name,
                file.origin
            );
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn channels_of_a_veth_and_of_a_nic() {
        let veth = "Channel parameters for dut0:\nPre-set maximums:\nRX:\t\t4\nTX:\t\t4\nOther:\t\tn/a\nCombined:\tn/a\nCurrent hardware settings:\nRX:\t\t1\nTX:\t\t2\nOther:\t\tn/a\nCombined:\tn/a\n";
        let (max, cur) = parse_channels(veth).unwrap();
        assert_eq!((max.queues(), cur.queues()), (4, 1));
        assert_eq!(max.set_args(3), "rx 3 tx 3");
        assert_eq!(cur.restore_args(), "rx 1 tx 2");
        let nic = "Channel parameters for ens1f0:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t63\nCurrent hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t8\n";
        let (max, cur) = parse_channels(nic).unwrap();
        assert_eq!((max.queues(), cur.queues()), (63, 8));
        assert_eq!(max.set_args(2), "combined 2");
        assert_eq!(cur.restore_args(), "combined 8");
        assert_eq!(
            parse_channels("netlink error: Operation not supported"),
            None
        );
    }

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

    /// A testbed file with `gens` generator hosts and a monitor.
    fn testbed(gens: usize) -> TestbedFile {
        let mut t = String::new();
        for i in 0..gens {
            t.push_str(&format!(
                "[[gen]]\nssh = \"root@g{i}\"\niface = \"gen0\"\ntools = \"/opt/x\"\nip = \"198.18.0.{}\"\n\n",
                i + 1
            ));
        }
        t.push_str("[dut]\nssh = \"root@d\"\niface = \"dut0\"\ntools = \"/opt/x\"\nip = \"198.18.0.2\"\n\n[mon]\nssh = \"root@m\"\niface = \"mon0\"\ntools = \"/opt/x\"\n");
        TestbedFile::from_toml(&t, "bed.toml", Path::new("/")).unwrap()
    }

    #[test]
    fn frame_sizes_update_rates_and_peers_run_on_a_testbed() {
        for name in ["drop-rate-sizes", "update-rate", "peers"] {
            let exp = Experiment::load(name).unwrap();
            assert!(refuse(&exp, &testbed(1), true).is_ok(), "{name}");
        }
        // Unpaced, the peers need --rate max.
        let exp = Experiment::load("peers").unwrap();
        let e = refuse(&exp, &testbed(1), false).unwrap_err().to_string();
        assert!(e.contains("pass --rate max"), "{e}");
    }

    #[test]
    fn a_peer_with_several_generator_hosts_is_refused_at_its_source_line() {
        let exp = Experiment::load("peers").unwrap();
        let e = refuse(&exp, &testbed(2), true).unwrap_err().to_string();
        let line = key_line(&exp.text, Some("trafgen"), "source");
        assert!(
            e.starts_with(&format!("{}:{line}: source: ", exp.origin))
                && e.contains("series `trafgen`: trafgen runs on one generator host")
                && e.contains("bed.toml has 2 [[gen]]"),
            "{e}"
        );
        assert!(exp.text.lines().nth(line - 1).unwrap().contains("trafgen"));
    }

    #[test]
    fn a_key_is_found_in_its_series_or_at_the_top() {
        assert_eq!(key_line(EXP, Some("b"), "measure"), 14);
        assert_eq!(key_line(EXP, Some("a"), "measure"), 2);
        assert_eq!(key_line(EXP, None, "topology"), 3);
        assert_eq!(key_line(EXP, None, "parameter"), 6);
        assert_eq!(key_line(EXP, None, "nothing"), 1);
    }
}
