//! Where every packet went: the loss ledger of one measurement, and what limited it.
//!
//! A ledger lists the counts of every stage the lab and the tools can see along the
//! path, in the order a frame meets them, each read before the traffic starts and
//! again after it stopped and the queues settled: what gen was asked for, handed to
//! the kernel and had confirmed sent; each interface's transmit and receive counters
//! (`/proc/net/dev` inside its namespace) hop by hop; the DUT program's own counters
//! (`dut status`); on the way back the answers; on the switched lab the mirror and the
//! monitor port. Three chains: requests (gen -> DUT program), answers (DUT program ->
//! gen's counter) and the mirror (switch -> monitor).
//!
//! Every stage has a *place*: the part of the set-up that is to blame when frames are
//! missing at that stage compared with the one before. A hand-off from one port to the
//! next (`X -> Y`, counted as what X transmitted) belongs to the receiver Y: on veth a
//! frame is refused at X's transmit when Y's receive ring is full, that is when Y does
//! not keep up.
//!
//! [`classify`] turns a ledger into `limited_by` by the decision table in
//! `lab/README.md` ("What limited each point").

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result};
use records::generator::Final as GenFinal;

/// Who is to blame for frames missing at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// gen: its pacing, its own queues, its receive side for answers.
    Generator,
    /// The lab between generator and DUT (the switch, its ports).
    Path,
    /// The DUT: its receive ring, its program, its answers leaving.
    Dut,
    /// The mirror and the monitor port (does not limit the DUT's figures).
    Monitor,
}

impl Place {
    /// The name in ledger.csv.
    pub fn name(self) -> &'static str {
        match self {
            Place::Generator => "generator",
            Place::Path => "path",
            Place::Dut => "dut",
            Place::Monitor => "monitor",
        }
    }
}

/// Which way the counted frames go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// gen -> DUT program.
    Request,
    /// DUT program -> gen.
    Answer,
    /// Switch -> monitor.
    Mirror,
}

impl Chain {
    /// The name in ledger.csv.
    pub fn name(self) -> &'static str {
        match self {
            Chain::Request => "request",
            Chain::Answer => "answer",
            Chain::Mirror => "mirror",
        }
    }
}

/// One stage: how many frames were seen there.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its chain.
    pub chain: Chain,
    /// What was counted, for people ("gen0 -> sw-gen").
    pub name: String,
    /// Who is to blame for frames missing here.
    pub place: Place,
    /// Frames counted.
    pub packets: u64,
}

/// What limited a measured point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitedBy {
    /// The DUT: the value is its capacity.
    Dut,
    /// The generator: the DUT got less than asked for or kept up with everything;
    /// the value is a lower bound of its capacity.
    Generator,
    /// The lab between generator and DUT lost frames first.
    Path,
    /// Nothing was saturated: offered = requested, nothing lost.
    None,
}

impl LimitedBy {
    /// The name in the CSVs.
    pub fn name(self) -> &'static str {
        match self {
            LimitedBy::Dut => "dut",
            LimitedBy::Generator => "generator",
            LimitedBy::Path => "path",
            LimitedBy::None => "none",
        }
    }

    /// Parses a CSV name.
    pub fn parse(s: &str) -> Option<LimitedBy> {
        Some(match s {
            "dut" => LimitedBy::Dut,
            "generator" => LimitedBy::Generator,
            "path" => LimitedBy::Path,
            "none" => LimitedBy::None,
            _ => return None,
        })
    }
}

impl std::fmt::Display for LimitedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `limited_by` of a loss at a stage of this place.
pub fn limited_by_place(p: Place) -> LimitedBy {
    match p {
        Place::Generator => LimitedBy::Generator,
        Place::Path => LimitedBy::Path,
        Place::Dut => LimitedBy::Dut,
        Place::Monitor => LimitedBy::None,
    }
}

/// Frames missing between two stages count as a loss above this: the larger of
/// 10 frames and 0.01 % of the stage before.
pub fn tolerance(before: u64) -> u64 {
    (before / 10_000).max(10)
}

/// gen offering less than this share of the requested rate is `generator`.
pub const OFFERED_MIN_RATIO: f64 = 0.995;

/// The ledger of one measurement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// The stages, chain by chain, in the order frames meet them.
    pub stages: Vec<Stage>,
}

/// A loss: where it first appeared and how many frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Loss {
    /// Index of the stage where frames were missing.
    pub stage: usize,
    /// How many.
    pub lost: u64,
}

impl Ledger {
    /// Per stage, frames missing compared with the stage before in its chain
    /// (0 for the first stage of a chain; never negative).
    pub fn losses(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.stages.len());
        for (i, s) in self.stages.iter().enumerate() {
            let prev = i
                .checked_sub(1)
                .map(|j| &self.stages[j])
                .filter(|p| p.chain == s.chain);
            out.push(prev.map_or(0, |p| p.packets.saturating_sub(s.packets)));
        }
        out
    }

    /// The first stage of `chain` that lost more than the tolerance.
    pub fn first_loss(&self, chain: Chain) -> Option<Loss> {
        let losses = self.losses();
        self.stages.iter().enumerate().find_map(|(i, s)| {
            let before = self.stages[i.checked_sub(1)?].packets;
            (s.chain == chain && losses[i] > tolerance(before)).then_some(Loss {
                stage: i,
                lost: losses[i],
            })
        })
    }

    /// Frames that entered the request chain (gen handed to the kernel, or the
    /// first stage there is) and how many of them did not reach the end of their
    /// chains: the request chain's decline, plus the answer chain's when there is one.
    pub fn end_to_end(&self) -> (u64, u64) {
        let chain = |c: Chain| -> Option<(u64, u64)> {
            let mut it = self.stages.iter().filter(|s| s.chain == c);
            let first = it.next()?.packets;
            let last = it.next_back().map_or(first, |s| s.packets);
            Some((first, first.saturating_sub(last)))
        };
        let (sent, lost) = chain(Chain::Request).unwrap_or((0, 0));
        let answer_lost = chain(Chain::Answer).map_or(0, |(_, l)| l);
        (sent, lost + answer_lost)
    }

    /// The first stage of the request or answer chain with any frame missing.
    pub fn first_any_loss(&self) -> Option<(&Stage, u64)> {
        let losses = self.losses();
        self.stages
            .iter()
            .zip(losses)
            .find(|(s, l)| *l > 0 && s.chain != Chain::Mirror)
    }

    /// The CSV lines of this ledger (see [`LEDGER_HEADER`]), each prefixed by `key`
    /// (`experiment,series,x,repetition`).
    pub fn csv_lines(&self, key: &str) -> String {
        let losses = self.losses();
        let mut s = String::new();
        for (st, lost) in self.stages.iter().zip(losses) {
            let _ = writeln!(
                s,
                "{key},{},{},{},{},{lost}",
                st.chain.name(),
                st.name,
                st.place.name(),
                st.packets
            );
        }
        s
    }
}

/// Header of `ledger.csv`.
pub const LEDGER_HEADER: &str = "experiment,series,x,repetition,chain,stage,place,packets,lost";

/// What the ledger says limited the point, and why, in words.
///
/// The decision table (lab/README.md):
/// 1. gen paced and confirmed less than 99.5 % of the requested rate: `generator`
///    (gen's `rate_shortfall.behind` says which side of it);
/// 2. otherwise the first loss over the tolerance on the request chain, then on the
///    answer chain: its stage's place (`path`, `dut`, `generator`);
/// 3. no loss, gen unpaced (as fast as it goes): `generator` (the DUT took all it was
///    offered; its capacity is at least that);
/// 4. no loss, paced rate reached: `none`.
///
/// Losses on the mirror chain never decide: they are named in the reason.
pub fn classify(ledger: &Ledger, generator: Option<&GenFinal>) -> (LimitedBy, String) {
    let mirror = ledger.first_loss(Chain::Mirror).map(|l| {
        format!(
            "; the mirror lost {} at {}",
            l.lost, ledger.stages[l.stage].name
        )
    });
    let mirror = mirror.unwrap_or_default();
    if let Some(g) = generator
        && let Some(req) = g.requested_pps
        && req > 0.0
        && g.tx_pps < OFFERED_MIN_RATIO * req
    {
        let behind = g
            .rate_shortfall
            .as_ref()
            .map(|s| format!(" (behind: {})", s.behind.words()))
            .unwrap_or_default();
        return (
            LimitedBy::Generator,
            format!(
                "gen offered {:.0} of {:.0} packets/s requested ({:.1} %){behind}{mirror}",
                g.tx_pps,
                req,
                100.0 * g.tx_pps / req
            ),
        );
    }
    for chain in [Chain::Request, Chain::Answer] {
        if let Some(l) = ledger.first_loss(chain) {
            let st = &ledger.stages[l.stage];
            if st.place == Place::Monitor {
                continue;
            }
            let by = limited_by_place(st.place);
            let before = ledger.stages[l.stage - 1].packets.max(1);
            return (
                by,
                format!(
                    "first loss at {}: {} of {} ({:.3} %){mirror}",
                    st.name,
                    l.lost,
                    before,
                    100.0 * l.lost as f64 / before as f64
                ),
            );
        }
    }
    match generator {
        Some(g) if g.requested_pps.is_none() => (
            LimitedBy::Generator,
            format!(
                "no loss: the DUT kept up with all gen offered ({:.0} packets/s), so its capacity is at least that{mirror}",
                g.tx_pps
            ),
        ),
        _ => (
            LimitedBy::None,
            format!("no loss, requested rate reached{mirror}"),
        ),
    }
}

/// One interface's counters (`/proc/net/dev`).
pub type IfCounters = xdplayer::iface::DevStats;

/// The counters of every interface of namespace `netns`.
pub fn read_netns(netns: &str) -> Result<BTreeMap<String, IfCounters>> {
    testbed::run_in_netns(netns, xdplayer::iface::all_dev_stats)?
        .with_context(|| format!("reading /proc/net/dev in namespace {netns}"))
}

/// Interface counters of a lab, per (namespace, interface).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot(pub BTreeMap<(String, String), IfCounters>);

impl Snapshot {
    /// Reads every interface of the namespaces `netns`.
    pub fn take(netns: &[String]) -> Result<Snapshot> {
        let mut m = BTreeMap::new();
        for ns in netns {
            for (iface, c) in read_netns(ns)? {
                m.insert((ns.clone(), iface), c);
            }
        }
        Ok(Snapshot(m))
    }

    /// The increase of each counter since `before`.
    pub fn since(&self, before: &Snapshot) -> Snapshot {
        Snapshot(
            self.0
                .iter()
                .map(|(k, c)| {
                    (
                        k.clone(),
                        c.since(before.0.get(k).copied().unwrap_or_default()),
                    )
                })
                .collect(),
        )
    }

    /// One interface's counters (zero when it was not there).
    pub fn get(&self, netns: &str, iface: &str) -> IfCounters {
        self.0
            .get(&(netns.to_owned(), iface.to_owned()))
            .copied()
            .unwrap_or_default()
    }
}

/// A port on the path: namespace and interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Namespace.
    pub netns: String,
    /// Interface.
    pub iface: String,
}

impl Port {
    /// `iface` in `netns`.
    pub fn new(netns: impl Into<String>, iface: impl Into<String>) -> Port {
        Port {
            netns: netns.into(),
            iface: iface.into(),
        }
    }
}

/// A hop of the path: frames leave `from` and arrive at `to`; `place` is who is to
/// blame when `to` does not take them (its ring full) or loses them on the way in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Sending port.
    pub from: Port,
    /// Receiving port.
    pub to: Port,
    /// Place of the receiver.
    pub place: Place,
}

/// The request path, the answer path and the mirror of a lab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path {
    /// gen -> DUT port, hop by hop.
    pub request: Vec<Hop>,
    /// DUT port -> gen, hop by hop.
    pub answer: Vec<Hop>,
    /// (switch ports whose received frames are mirrored, mirror hop), switched lab only.
    pub mirror: Option<(Vec<Port>, Hop)>,
}

/// The DUT program's counters over the measurement (`dut status`, after - before).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DutCounts {
    /// Frames the program saw.
    pub packets: u64,
    /// Frames it answered or sent back (XDP_TX, or a user-space DUT's answers).
    pub tx: u64,
}

/// What the tools reported over the measurement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tools<'a> {
    /// gen's final record (None for another source).
    pub generator: Option<&'a GenFinal>,
    /// The DUT program's counters.
    pub dut: Option<DutCounts>,
    /// Frames tstamp captured (switched lab with tstamp).
    pub captured: Option<u64>,
    /// The program answers (dns-ping, dns-cache, reflect): build the answer chain.
    pub answers: bool,
}

/// Builds the ledger of a measurement from the path, the interface counters'
/// increase over it, and the tools' own counts.
pub fn build(path: &Path, d: &Snapshot, t: &Tools<'_>) -> Ledger {
    let mut st = Vec::new();
    let mut push = |chain, name: String, place, packets| {
        st.push(Stage {
            chain,
            name,
            place,
            packets,
        })
    };
    let first = path.request.first();
    if let Some(g) = t.generator {
        push(
            Chain::Request,
            "gen handed to the kernel".into(),
            Place::Generator,
            g.tx_verdicts,
        );
        // Refused by the kernel: xdp-live's frames are refused by the receiving
        // port's ring; AF_XDP's by gen's own queue.
        let refused_at = match (g.engine, first) {
            (records::generator::Engine::XdpLive, Some(h)) => h.place,
            _ => Place::Generator,
        };
        push(
            Chain::Request,
            "gen confirmed sent".into(),
            refused_at,
            g.tx_packets,
        );
    }
    for h in &path.request {
        let tx = d.get(&h.from.netns, &h.from.iface).tx_packets;
        let rx = d.get(&h.to.netns, &h.to.iface).rx_packets;
        push(
            Chain::Request,
            format!("{} -> {} (sent)", h.from.iface, h.to.iface),
            h.place,
            tx,
        );
        push(
            Chain::Request,
            format!("{} received", h.to.iface),
            h.place,
            rx,
        );
    }
    if let Some(c) = t.dut {
        push(
            Chain::Request,
            "DUT program saw".into(),
            Place::Dut,
            c.packets,
        );
    }
    if t.answers {
        if let Some(c) = t.dut {
            push(Chain::Answer, "DUT answered".into(), Place::Dut, c.tx);
        }
        for h in &path.answer {
            let tx = d.get(&h.from.netns, &h.from.iface).tx_packets;
            let rx = d.get(&h.to.netns, &h.to.iface).rx_packets;
            push(
                Chain::Answer,
                format!("{} -> {} (sent)", h.from.iface, h.to.iface),
                h.place,
                tx,
            );
            push(
                Chain::Answer,
                format!("{} received", h.to.iface),
                h.place,
                rx,
            );
        }
        if let Some(g) = t.generator
            && g.rx_counter.is_some()
        {
            push(
                Chain::Answer,
                "gen counted answers".into(),
                Place::Generator,
                g.rx_packets,
            );
        }
    }
    if let Some((ports, h)) = &path.mirror {
        let into: u64 = ports
            .iter()
            .map(|p| d.get(&p.netns, &p.iface).rx_packets)
            .sum();
        push(
            Chain::Mirror,
            "to mirror (switch ports received)".into(),
            Place::Monitor,
            into,
        );
        push(
            Chain::Mirror,
            format!("{} -> {} (sent)", h.from.iface, h.to.iface),
            Place::Monitor,
            d.get(&h.from.netns, &h.from.iface).tx_packets,
        );
        push(
            Chain::Mirror,
            format!("{} received", h.to.iface),
            Place::Monitor,
            d.get(&h.to.netns, &h.to.iface).rx_packets,
        );
        if let Some(c) = t.captured {
            push(Chain::Mirror, "tstamp captured".into(), Place::Monitor, c);
        }
    }
    Ledger { stages: st }
}

/// The most frequent classification of a point's repetitions (ties: the first seen).
pub fn majority(v: &[LimitedBy]) -> Option<LimitedBy> {
    let mut best: Option<(LimitedBy, usize)> = None;
    for l in v {
        let n = v.iter().filter(|x| *x == l).count();
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((*l, n));
        }
    }
    best.map(|(l, _)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(chain: Chain, place: Place, packets: u64) -> Stage {
        Stage {
            chain,
            name: format!("{}-{packets}", place.name()),
            place,
            packets,
        }
    }

    fn gen_final(requested: Option<f64>, tx_pps: f64) -> GenFinal {
        let json = serde_json::json!({
            "type": "final", "schema_version": records::SCHEMA_VERSION, "engine": "afxdp",
            "xsk_mode": null, "iface": "gen0", "profile": "p", "frame_len": 60, "queues": 1,
            "duration_s": 1.0, "tx_packets": tx_pps as u64, "tx_bytes": 0, "tx_pps": tx_pps,
            "tx_mbps": 0.0, "tx_mbps_wire": 0.0, "requested_pps": requested,
            "achieved_ratio": null, "interval_pps_mean": 0.0, "interval_pps_stddev": 0.0,
            "pacing_deviation_ns": {"p50": 0, "p90": 0, "p99": 0, "max": 0},
            "rx_packets": 0, "rx_pps": 0.0, "rx_rcodes": {}, "replies_per_request": 0.0,
            "interrupted": false, "xsk_stats": null, "tx_verdicts": tx_pps as u64,
            "tx_dropped": 0, "tx_check": null, "rx_probes": 0, "rx_counter": null,
            "rate_shortfall": null
        });
        serde_json::from_value(json).expect("a valid gen final record")
    }

    #[test]
    fn tolerance_is_ten_packets_or_a_hundredth_percent() {
        assert_eq!(tolerance(0), 10);
        assert_eq!(tolerance(99_999), 10);
        assert_eq!(tolerance(1_000_000), 100);
    }

    #[test]
    fn the_first_loss_names_its_stage_and_chains_do_not_mix() {
        let l = Ledger {
            stages: vec![
                st(Chain::Request, Place::Generator, 1000),
                st(Chain::Request, Place::Path, 995),
                st(Chain::Request, Place::Dut, 500),
                st(Chain::Answer, Place::Dut, 100),
                st(Chain::Answer, Place::Generator, 100),
            ],
        };
        assert_eq!(l.losses(), vec![0, 5, 495, 0, 0]);
        // 5 of 1000 is under the 10-packet tolerance: the DUT lost first.
        assert_eq!(
            l.first_loss(Chain::Request),
            Some(Loss {
                stage: 2,
                lost: 495
            })
        );
        assert_eq!(l.first_loss(Chain::Answer), None);
        let (by, why) = classify(&l, Some(&gen_final(Some(1000.0), 1000.0)));
        assert_eq!(by, LimitedBy::Dut, "{why}");
        assert!(why.contains("dut-500"), "{why}");
    }

    #[test]
    fn decision_table() {
        let clean = Ledger {
            stages: vec![
                st(Chain::Request, Place::Generator, 1000),
                st(Chain::Request, Place::Dut, 1000),
            ],
        };
        let path_loss = Ledger {
            stages: vec![
                st(Chain::Request, Place::Generator, 100_000),
                st(Chain::Request, Place::Path, 90_000),
                st(Chain::Request, Place::Dut, 80_000),
            ],
        };
        // Offered short of the request: the generator, whatever was lost after.
        let (by, _) = classify(&path_loss, Some(&gen_final(Some(1000.0), 990.0)));
        assert_eq!(by, LimitedBy::Generator);
        // 99.5 % reached: the losses decide.
        let (by, _) = classify(&path_loss, Some(&gen_final(Some(1000.0), 995.0)));
        assert_eq!(by, LimitedBy::Path);
        // No loss, paced and reached: nothing limited it.
        let (by, _) = classify(&clean, Some(&gen_final(Some(1000.0), 1000.0)));
        assert_eq!(by, LimitedBy::None);
        // No loss, unpaced: the DUT kept up with the generator.
        let (by, why) = classify(&clean, Some(&gen_final(None, 1000.0)));
        assert_eq!(by, LimitedBy::Generator);
        assert!(why.contains("at least"), "{why}");
        // Another source (no gen record), no loss: none.
        assert_eq!(classify(&clean, None).0, LimitedBy::None);
    }

    #[test]
    fn mirror_losses_are_named_but_never_decide() {
        let l = Ledger {
            stages: vec![
                st(Chain::Request, Place::Generator, 1000),
                st(Chain::Request, Place::Dut, 1000),
                st(Chain::Mirror, Place::Monitor, 2000),
                st(Chain::Mirror, Place::Monitor, 1000),
            ],
        };
        let (by, why) = classify(&l, Some(&gen_final(Some(1000.0), 1000.0)));
        assert_eq!(by, LimitedBy::None);
        assert!(why.contains("mirror lost 1000"), "{why}");
    }

    #[test]
    fn ledger_from_counters_follows_the_path() {
        let (g, s, d) = ("g".to_owned(), "s".to_owned(), "d".to_owned());
        let path = Path {
            request: vec![
                Hop {
                    from: Port::new(&g, "gen0"),
                    to: Port::new(&s, "sw-gen"),
                    place: Place::Path,
                },
                Hop {
                    from: Port::new(&s, "sw-dut"),
                    to: Port::new(&d, "dut0"),
                    place: Place::Dut,
                },
            ],
            answer: vec![],
            mirror: None,
        };
        let c = |rx, tx| IfCounters {
            rx_packets: rx,
            tx_packets: tx,
            ..IfCounters::default()
        };
        let mut after = BTreeMap::new();
        after.insert((g.clone(), "gen0".to_owned()), c(0, 1000));
        after.insert((s.clone(), "sw-gen".to_owned()), c(1000, 0));
        after.insert((s.clone(), "sw-dut".to_owned()), c(0, 700));
        after.insert((d.clone(), "dut0".to_owned()), c(700, 0));
        let delta = Snapshot(after).since(&Snapshot::default());
        let gf = gen_final(None, 1000.0);
        let l = build(
            &path,
            &delta,
            &Tools {
                generator: Some(&gf),
                dut: Some(DutCounts {
                    packets: 700,
                    tx: 0,
                }),
                captured: None,
                answers: false,
            },
        );
        let names: Vec<&str> = l.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "gen handed to the kernel",
                "gen confirmed sent",
                "gen0 -> sw-gen (sent)",
                "sw-gen received",
                "sw-dut -> dut0 (sent)",
                "dut0 received",
                "DUT program saw"
            ]
        );
        // The switch's transmit to dut0 is short: dut0's ring refused them.
        let (by, why) = classify(&l, Some(&gf));
        assert_eq!(by, LimitedBy::Dut, "{why}");
        assert!(why.contains("sw-dut -> dut0"), "{why}");
        assert!(
            l.csv_lines("e,s,1,1")
                .contains("e,s,1,1,request,sw-dut -> dut0 (sent),dut,700,300\n")
        );
    }

    #[test]
    fn majority_takes_the_most_frequent() {
        use LimitedBy::*;
        assert_eq!(majority(&[Dut, Generator, Dut]), Some(Dut));
        assert_eq!(majority(&[]), Option::None);
    }
}
