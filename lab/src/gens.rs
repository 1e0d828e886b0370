//! Several generator hosts run as one (`lab run --testbed`, `lab demo
//! --testbed`): each host's share of the rate, the queues and the frames,
//! one wall-clock start (`gen --start-at`), each host's first frame at the
//! monitor (the start error on one clock), per-host values and their total.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use records::generator::Final as GenFinal;

use crate::remote::{RemoteHost, Site};
use crate::runner::sleep_checked;
use crate::tools::{Child, Output};

/// gen on a testbed host.
pub struct RemoteGen {
    /// The host (over ssh).
    pub site: Site,
    /// Its data interface.
    pub iface: String,
    /// Its data interface's MAC (the testbed file's), how the monitor tells its
    /// frames apart.
    pub mac: Option<[u8; 6]>,
    /// Its source address (the testbed file's `ip`).
    pub src_ip: Option<std::net::Ipv4Addr>,
    /// The DUT's address.
    pub dst_ip: Option<std::net::Ipv4Addr>,
    /// The DUT's MAC (else gen's neighbour lookup on the host).
    pub dst_mac: Option<[u8; 6]>,
}

impl RemoteGen {
    /// Generator host `g` sending to the DUT host `dut`, as the testbed file
    /// describes them.
    pub fn on(g: &Arc<RemoteHost>, dut: &RemoteHost) -> RemoteGen {
        RemoteGen {
            site: Site::Remote(g.clone()),
            iface: g.endpoint.iface.clone(),
            mac: g.endpoint.mac,
            src_ip: g.endpoint.ip,
            dst_ip: dut.endpoint.ip,
            dst_mac: dut.endpoint.mac,
        }
    }

    /// Points gen's command line `b` at this host: its namespace, interface,
    /// source address, and the DUT's address and MAC.
    pub fn place(&self, b: &mut records::args::Gen) {
        b.netns = self.site.netns();
        b.iface = self.iface.clone();
        b.src_ip = self.src_ip.map(std::net::IpAddr::V4);
        b.dst_ip = self.dst_ip;
        b.dst_mac = self.dst_mac;
    }
}

/// The most generator hosts `lab run --testbed` drives.
pub const MAX_GEN_HOSTS: usize = 4;

/// How far ahead of starting them several generator hosts are told to start
/// (`gen --start-at`): time for ssh, gen's set-up and its ready record.
pub const GEN_START_AHEAD: Duration = Duration::from_secs(3);

/// The per-host metrics of generator host i (0-based, as `gen[i]`).
pub struct PerHost {
    /// `genI_offered_pps`.
    pub offered: &'static str,
    /// `genI_start_error_ms`.
    pub start_error: &'static str,
    /// `genI_answered_pps`.
    pub answered: &'static str,
}

/// [`PerHost`] of hosts 0..[`MAX_GEN_HOSTS`].
pub const PER_HOST: [PerHost; MAX_GEN_HOSTS] = [
    PerHost {
        offered: "gen0_offered_pps",
        start_error: "gen0_start_error_ms",
        answered: "gen0_answered_pps",
    },
    PerHost {
        offered: "gen1_offered_pps",
        start_error: "gen1_start_error_ms",
        answered: "gen1_answered_pps",
    },
    PerHost {
        offered: "gen2_offered_pps",
        start_error: "gen2_start_error_ms",
        answered: "gen2_answered_pps",
    },
    PerHost {
        offered: "gen3_offered_pps",
        start_error: "gen3_start_error_ms",
        answered: "gen3_answered_pps",
    },
];

/// Host `i`'s share of `n` generator hosts: the rate divided by n (gen paces
/// on fractional frames/s, so nothing is left over) and the queues divided
/// by n, the first `queues % n` hosts one more, at least one each.
pub fn share(
    rate: Option<crate::experiment::Rate>,
    queues: u32,
    n: usize,
    i: usize,
) -> (Option<crate::experiment::Rate>, u32) {
    use crate::experiment::Rate;
    let n32 = n.max(1) as u32;
    let rate = rate.map(|r| match r {
        Rate::Pps(p) => Rate::Pps(p / f64::from(n32)),
        Rate::Bits(b) => Rate::Bits(b / f64::from(n32)),
    });
    let q = queues / n32 + u32::from((i as u32) < queues % n32);
    (rate, q.max(1))
}

/// Host `i`'s share of `total` frames over `n` generator hosts: the first
/// `total % n` hosts one more (the shares add up to `total`), at least one.
pub fn share_count(total: u64, n: usize, i: usize) -> u64 {
    let n = n.max(1) as u64;
    (total / n + u64::from((i as u64) < total % n)).max(1)
}

/// Several generator hosts under way ([`spawn_together`]).
pub struct MultiGen {
    /// Each host's gen.
    children: Vec<Child>,
    /// Per host: the monitor's capture of its first frame (empty: no monitor).
    captures: Vec<Option<Child>>,
    /// The common start, CLOCK_REALTIME ns.
    start_at_ns: u64,
    /// gen counts answers (per-host answered rates).
    answers: bool,
}

/// On the monitor: tcpdump waiting for the first frame from generator host
/// `r` (by its source MAC where the testbed file gives it: a profile may vary
/// the source address; else its address), printing its software receive
/// stamp on the monitor's clock, then exiting. It runs as a peer does
/// ([`RemoteHost::spawn_peer`]): stopped when its session's standard input
/// ends ([`Child::stop`]), also when no frame came.
fn first_frame_capture(
    mon: &std::sync::Arc<crate::remote::RemoteHost>,
    r: &RemoteGen,
) -> Result<Child> {
    let filter = match (r.mac, r.src_ip) {
        (Some(m), _) => format!("ether src {}", profiles::units::format_mac(m)),
        (None, Some(ip)) => format!("ip src host {ip}"),
        (None, None) => bail!("{}: no MAC or address to recognise its frames by", r.site),
    };
    let argv: Vec<String> = [
        "timeout",
        "300",
        "tcpdump",
        "-i",
        &mon.endpoint.iface,
        "-n",
        "-c",
        "1",
        "-tt",
        "--time-stamp-precision=nano",
        "-Q",
        "in",
        &filter,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    mon.spawn_peer(&argv, &[])
}

/// The receive time (ns since the epoch) of the frame tcpdump printed first.
fn first_frame_ns(out: crate::tools::Output) -> Option<u64> {
    let first = out.lines.first()?.split_whitespace().next()?.to_owned();
    let (s, f) = first.split_once('.')?;
    let s: u64 = s.parse().ok()?;
    let mut frac = f.to_owned();
    frac.truncate(9);
    while frac.len() < 9 {
        frac.push('0');
    }
    Some(s * 1_000_000_000 + frac.parse::<u64>().ok()?)
}

/// Several generator hosts (`lab run --testbed`): `b` is gen's command line
/// as for one host (rate, duration or count, answers counted or not); each
/// host gets its share of the rate, the queues and the count ([`share`],
/// [`share_count`]), its own interface and source address, and all wait
/// for one wall-clock start ([`GEN_START_AHEAD`] from now, `gen
/// --start-at`); the monitor, if any, captures each host's first frame.
/// Returns once every host printed its ready record.
pub fn spawn_together(
    gens: &[RemoteGen],
    mon: Option<&Arc<RemoteHost>>,
    b: &records::args::Gen,
    queues: u32,
) -> Result<MultiGen> {
    let n = gens.len();
    let start_at_ns = xdplayer::clock::realtime_ns() + GEN_START_AHEAD.as_nanos() as u64;
    let mut captures = Vec::new();
    if let Some(mon) = mon {
        for r in gens {
            captures.push(Some(first_frame_capture(mon, r)?));
        }
        // tcpdump is listening before any host can send: well inside the
        // seconds ahead of the start.
        sleep_checked(Duration::from_millis(500))?;
    }
    let mut children = Vec::with_capacity(n);
    let mut stream_base = 0;
    for (i, r) in gens.iter().enumerate() {
        let mut h = b.clone();
        r.place(&mut h);
        let (rate, queues) = share(b.rate, b.queues.unwrap_or(queues), n, i);
        h.rate = rate;
        h.queues = Some(queues);
        h.count = b.count.map(|c| share_count(c, n, i));
        // Probe streams stay unique across hosts: host i's ids start after
        // the queues of the hosts before it (`gen --stream-base`).
        if b.stamp {
            h.stream_base = Some(b.stream_base.unwrap_or(0) + stream_base);
        }
        stream_base += queues;
        h.start_at_ns = Some(start_at_ns);
        children.push(r.site.spawn("gen", &h.argv())?);
    }
    for (r, c) in gens.iter().zip(children.iter_mut()) {
        let v = c
            .wait_for_type("ready", Duration::from_secs(30))
            .with_context(|| format!("gen on {}", r.site))?;
        let ready: records::generator::Ready = serde_json::from_value(v)
            .with_context(|| format!("gen on {}: its ready record", r.site))?;
        if ready.now_ns > start_at_ns {
            eprintln!(
                "  warning: gen on {} was ready {:.3} s after the common start (it starts late; see its start error)",
                r.site,
                (ready.now_ns - start_at_ns) as f64 / 1e9
            );
        }
    }
    Ok(MultiGen {
        children,
        captures,
        start_at_ns,
        answers: !b.no_rx,
    })
}

/// Ends the generator hosts' gens (`stop`: now; else when each has sent
/// its share), hands each one's output to `save`, pushes per host its
/// offered rate, its answers (when counted) and its start error, and gives
/// their total ([`GenFinal::total`]): the point's gen record.
pub fn finish_together(
    gens: &[RemoteGen],
    mg: MultiGen,
    stop: bool,
    v: &mut Vec<(&'static str, f64)>,
    save: &dyn Fn(usize, &Output),
) -> Result<GenFinal> {
    let mut finals = Vec::new();
    let mut first_error = None;
    for (i, c) in mg.children.into_iter().enumerate() {
        let out = if stop {
            c.stop(Duration::from_secs(5))
        } else {
            c.wait()
        };
        let out = out.and_then(|out| {
            save(i, &out);
            if !stop {
                out.check()?;
            }
            out.final_as::<GenFinal>("gen final")
        });
        match out {
            Ok(f) => finals.push(f),
            Err(e) => {
                first_error.get_or_insert(e.context(format!("gen on {}", gens[i].site)));
            }
        }
    }
    let monitor: Vec<Option<u64>> = mg
        .captures
        .into_iter()
        .map(|c| c.and_then(|c| first_frame_ns(c.stop(Duration::from_secs(2)).ok()?)))
        .collect();
    if let Some(e) = first_error {
        return Err(e);
    }
    for (i, f) in finals.iter().enumerate() {
        let m = &PER_HOST[i];
        v.push((m.offered, f.tx_pps));
        if mg.answers {
            v.push((m.answered, f.rx_pps));
        }
        // The start error on the monitor's clock (one clock sees every
        // host), else on the host's own clock.
        let first = monitor.get(i).copied().flatten().or(f.first_tx_ns);
        if let Some(t) = first {
            v.push((m.start_error, (t as f64 - mg.start_at_ns as f64) / 1e6));
        }
        let mut words = format!(
            "  {}: {:.0} frames/s, {} sent",
            gens[i].site, f.tx_pps, f.tx_packets
        );
        if mg.answers {
            words.push_str(&format!(", {} answers", f.rx_packets));
        }
        if let Some(t) = first {
            let source = if monitor.get(i).copied().flatten().is_some() {
                "at the monitor"
            } else {
                "gen's own clock"
            };
            words.push_str(&format!(
                ", first frame {:+.3} ms from the start ({source})",
                (t as f64 - mg.start_at_ns as f64) / 1e6
            ));
        }
        eprintln!("{words}");
    }
    GenFinal::total(&finals).context("no generator host")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::Rate;

    #[test]
    fn shares_add_up_to_the_whole() {
        for n in 1..=MAX_GEN_HOSTS {
            for total in [1u64, 7, 1000, 1_000_003] {
                let parts: Vec<u64> = (0..n).map(|i| share_count(total, n, i)).collect();
                if total >= n as u64 {
                    assert_eq!(
                        parts.iter().sum::<u64>(),
                        total,
                        "{total} over {n}: {parts:?}"
                    );
                }
                assert!(parts.iter().all(|p| *p >= 1), "{parts:?}");
                let (lo, hi) = (parts.iter().min(), parts.iter().max());
                assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{parts:?}");
            }
            let queues: u32 = (0..n).map(|i| share(None, 5, n, i).1).sum();
            assert_eq!(queues, 5u32.max(n as u32), "5 queues over {n} hosts");
            let pps: f64 = (0..n)
                .map(|i| match share(Some(Rate::Pps(100_000.0)), 1, n, i).0 {
                    Some(Rate::Pps(p)) => p,
                    other => panic!("{other:?}"),
                })
                .sum();
            assert!((pps - 100_000.0).abs() < 1e-6, "{pps}");
        }
    }
}
