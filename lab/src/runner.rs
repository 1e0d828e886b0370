//! `lab run`: measures an [`Experiment`] by driving the real binaries through
//! their command lines and JSON outputs, as a user would.
//!
//! For every series and sweep value the runner builds a fresh lab (unique
//! name, torn down by `Testbed`'s Drop also on errors and Ctrl-C), installs
//! the DUT program with `dut install`, then repeats the measurement
//! `repetitions` times. Each measurement appends its values to `points.csv`
//! and keeps each tool's raw output under `raw/`; measurements already in
//! `points.csv` are skipped, so a re-run with the same `--out` resumes. At the
//! end (also after Ctrl-C or a failed point) the summary, the plots and the
//! Markdown report are written from everything in `points.csv`.
//!
//! Rates at the DUT are taken from its program's counters and BPF run-time
//! statistics (`dut status --output json --window D`) over a window of the run's
//! duration that starts once traffic is seen at the DUT, so a source's
//! start-up time does not count against it; gen and trafgen are measured the
//! same way.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use crate::experiment::{At, Experiment, Measure, Param, Plan, Series, Source, Topo};
use crate::ledger;
use crate::store::{self, Point, Store, fmt_num};
use records::args::DutCmd;
use records::dut::Attached;
use records::generator::Final as GenFinal;
use records::tstamp::Final as TstampFinal;

use crate::tools::{self, Child};
use crate::{Testbed, Topology, UpOptions};

/// Options of `lab run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Short run.
    pub quick: bool,
}

/// Default output directory: `out/<experiment>-<UTC timestamp>`.
pub fn default_out(name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("out").join(format!("{name}-{}", utc_stamp(secs)))
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A metric: name (CSV), axis label, unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// Name in the CSVs and file names.
    pub name: &'static str,
    /// Axis label.
    pub label: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// A rate the DUT reached (its capacity when it was the limit): a point
    /// nothing saturated is a lower bound of it.
    pub capacity: bool,
}

/// Every metric the runner records, in plot order.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "drop_pps",
        label: "drop rate",
        unit: "packets/s",
        capacity: true,
    },
    Metric {
        name: "processed_pps",
        label: "packets processed by the DUT program",
        unit: "packets/s",
        capacity: true,
    },
    Metric {
        name: "ns_per_packet",
        label: "CPU time per packet (DUT accounting)",
        unit: "ns",
        capacity: false,
    },
    Metric {
        name: "pass_pps",
        label: "passed on by the program",
        unit: "packets/s",
        capacity: true,
    },
    Metric {
        name: "cpu_tenant_ns_per_packet",
        label: "CPU charged to the tenant (its process + its program)",
        unit: "ns/packet",
        capacity: false,
    },
    Metric {
        name: "cpu_host_ns_per_packet",
        label: "CPU of the host's kernel (softirq: veth, bridge, XDP), tenant's program excluded",
        unit: "ns/packet",
        capacity: false,
    },
    Metric {
        name: "offered_pps",
        label: "offered rate (gen tx, confirmed by the kernel)",
        unit: "packets/s",
        capacity: false,
    },
    Metric {
        name: "refused_pps",
        label: "frames gen handed over that the kernel refused (the receiving ring full)",
        unit: "packets/s",
        capacity: false,
    },
    Metric {
        name: "answered_pps",
        label: "answers received",
        unit: "answers/s",
        capacity: true,
    },
    Metric {
        name: "rtt_p50_us",
        label: "median response time",
        unit: "us",
        capacity: false,
    },
    Metric {
        name: "rtt_p99_us",
        label: "99th percentile response time",
        unit: "us",
        capacity: false,
    },
    Metric {
        name: "lost_percent",
        label: "requests without answer",
        unit: "%",
        capacity: false,
    },
    Metric {
        name: "updates_batch_per_s",
        label: "map updates, batched",
        unit: "updates/s",
        capacity: false,
    },
    Metric {
        name: "updates_single_per_s",
        label: "map updates, one per syscall",
        unit: "updates/s",
        capacity: false,
    },
];

/// gen's offered rate (frames the kernel confirmed sent) and the rate of frames
/// it handed over that the kernel refused, from its final record.
fn push_offered(f: &GenFinal, v: &mut Vec<(&'static str, f64)>) {
    v.push(("offered_pps", f.tx_pps));
    if f.duration_s > 0.0 {
        v.push(("refused_pps", f.tx_dropped as f64 / f.duration_s));
    }
}

fn metric(name: &str) -> Metric {
    METRICS
        .iter()
        .copied()
        .find(|m| m.name == name)
        .unwrap_or(Metric {
            name: "value",
            label: "value",
            unit: "",
            capacity: false,
        })
}

/// The metrics a measurement kind produces (first = the figure's metric).
pub fn metrics_of(m: Measure) -> &'static [&'static str] {
    match m {
        Measure::DutRate => &[
            "drop_pps",
            "processed_pps",
            "ns_per_packet",
            "offered_pps",
            "refused_pps",
            "pass_pps",
            "cpu_tenant_ns_per_packet",
            "cpu_host_ns_per_packet",
        ],
        Measure::AnswerRate => &["answered_pps", "offered_pps", "refused_pps"],
        Measure::ResponseTime => &["rtt_p50_us", "rtt_p99_us", "lost_percent", "answered_pps"],
        Measure::UpdateRate => &["updates_batch_per_s", "updates_single_per_s"],
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Output directory.
    pub out: PathBuf,
    /// Measurements taken now.
    pub measured: usize,
    /// Measurements skipped (already in points.csv).
    pub skipped: usize,
    /// Failed measurements: (series, x, message).
    pub failures: Vec<(String, f64, String)>,
    /// Files written (plots, CSVs, report).
    pub files: Vec<PathBuf>,
    /// Interrupted by Ctrl-C.
    pub interrupted: bool,
}

/// Checks that every binary the experiment needs is there; one line per
/// missing tool, before anything starts.
pub fn preflight(exp: &Experiment) -> Result<()> {
    let mut need: Vec<&str> = vec!["dut"];
    if exp
        .series
        .iter()
        .any(|s| s.source == Source::Gen && s.measure != Measure::UpdateRate)
    {
        need.push("gen");
    }
    if exp
        .series
        .iter()
        .any(|s| s.measure == Measure::ResponseTime)
    {
        need.push("tstamp");
    }
    let mut missing = Vec::new();
    for t in need {
        if let Err(e) = tools::locate(t) {
            missing.push(format!("{e}"));
        }
    }
    for p in exp.peers() {
        let r = match p {
            Source::Trafgen => tools::locate_peer("trafgen", "netsniff-ng"),
            Source::Dnsperf => tools::locate_peer("dnsperf", "dnsperf"),
            Source::Gen => Ok(PathBuf::new()),
        };
        if let Err(e) = r {
            missing.push(format!("{e}"));
        }
    }
    if !missing.is_empty() {
        bail!("{}: {}", exp.origin, missing.join("; "));
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("lab run needs root (it builds namespaces and attaches XDP programs)");
    }
    Ok(())
}

/// Runs an experiment into `opts.out`.
pub fn run(exp: &Experiment, opts: &RunOptions) -> Result<RunSummary> {
    preflight(exp)?;
    tools::install_ctrlc()?;
    crate::registry::reap_and_report("lab run");
    let plan = exp.plan(opts.quick);
    let mut store = Store::open(&opts.out, &exp.name)?;
    let raw = opts.out.join("raw");
    std::fs::create_dir_all(&raw).with_context(|| format!("create {}", raw.display()))?;
    let done = store.done();

    let total = exp.series.len() * plan.values.len() * plan.repetitions as usize;
    let already = count_done(exp, &plan, &done);
    let mut summary = RunSummary {
        out: opts.out.clone(),
        measured: 0,
        skipped: already,
        failures: Vec::new(),
        files: Vec::new(),
        interrupted: false,
    };
    if already > 0 {
        eprintln!(
            "lab run: {} of {total} measurements already in {}, resuming",
            already,
            store.path().display()
        );
    }
    let started = Instant::now();
    let mut left = total - already;
    // Initial guess per measurement: the run plus ~3 s of set-up.
    let guess = plan.duration.as_secs_f64() + 3.0;

    'outer: for series in &exp.series {
        for &x in &plan.values {
            let todo: Vec<u32> = (1..=plan.repetitions)
                .filter(|r| !done.contains(&store::key(&series.name, x, *r)))
                .collect();
            if todo.is_empty() {
                continue;
            }
            if tools::stop_requested() {
                break 'outer;
            }
            let result = (|| -> Result<()> {
                let point = PointRun::set_up(exp, series, x, &plan, &raw)?;
                for rep in todo {
                    if tools::stop_requested() {
                        return Ok(());
                    }
                    let per = if summary.measured > 0 {
                        started.elapsed().as_secs_f64() / summary.measured as f64
                    } else {
                        guess
                    };
                    eprintln!(
                        "[{}/{total}] {}: {}{} rep {rep}/{} | ~{} left",
                        total - left + 1,
                        exp.name,
                        series.name,
                        if exp.parameter == Param::None {
                            String::new()
                        } else {
                            format!(", {}={}", exp.parameter, fmt_num(x))
                        },
                        plan.repetitions,
                        fmt_secs(per * left as f64)
                    );
                    let measured = point.measure(rep).with_context(|| {
                        format!("{} {} x={} rep {rep}", exp.name, series.name, fmt_num(x))
                    })?;
                    let limited_by = measured.ledger.as_ref().map(|a| a.limited_by);
                    if let Some(a) = &measured.ledger {
                        let key = format!("{},{},{},{rep}", exp.name, series.name, fmt_num(x));
                        store.append_ledger(
                            &a.ledger.csv_lines(&key),
                            &format!("{key},{},{}\n", a.limited_by, a.reason.replace(',', ";")),
                        )?;
                        if a.limited_by != ledger::LimitedBy::Dut {
                            eprintln!("  limited by {}: {}", a.limited_by, a.reason);
                        }
                    }
                    let pts: Vec<Point> = measured
                        .values
                        .into_iter()
                        .map(|(m, v)| Point {
                            experiment: exp.name.clone(),
                            series: series.name.clone(),
                            metric: m.to_owned(),
                            x,
                            repetition: rep,
                            value: v,
                            unit: metric(m).unit.to_owned(),
                            limited_by,
                        })
                        .collect();
                    store.append(&pts)?;
                    summary.measured += 1;
                    left = left.saturating_sub(1);
                }
                Ok(())
            })();
            if let Err(e) = result {
                if tools::stop_requested() {
                    break 'outer;
                }
                eprintln!("lab run: error: {e:#}");
                summary
                    .failures
                    .push((series.name.clone(), x, format!("{e:#}")));
                left = left.saturating_sub(plan.repetitions as usize);
            }
        }
    }
    summary.interrupted = tools::stop_requested();
    summary.files = crate::report::write(exp, &plan, opts, store.points(), &summary)?;
    Ok(summary)
}

fn count_done(exp: &Experiment, plan: &Plan, done: &HashSet<store::Key>) -> usize {
    let mut n = 0;
    for s in &exp.series {
        for &x in &plan.values {
            for r in 1..=plan.repetitions {
                n += usize::from(done.contains(&store::key(&s.name, x, r)));
            }
        }
    }
    n
}

/// `1h02m`, `3m05s`, `12s`.
pub fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// One (series, x): its lab, its DUT program, its settings.
struct PointRun<'a> {
    series: &'a Series,
    x: f64,
    parameter: Param,
    duration: Duration,
    raw: PathBuf,
    /// A userspace DUT runs in the foreground for as long as we measure.
    dut_fg: Option<Child>,
    bed: Option<Testbed>,
    /// Where the program is installed (and its counters read).
    port: DutPort,
    /// The generator's namespace and port the traffic leaves by.
    gen_port: (String, &'static str),
    /// Tenants topology: the tenant the traffic goes to.
    dst_tenant: Option<u8>,
    /// The busy neighbour tenant.
    neighbour: Option<Neighbour>,
    queues: u32,
}

/// What one measurement gave: its values, and where its packets went.
struct Measured {
    values: Vec<(&'static str, f64)>,
    /// None where there is no traffic to account for (map updates).
    ledger: Option<Account>,
}

/// A measurement's loss ledger and what limited it.
struct Account {
    ledger: ledger::Ledger,
    limited_by: ledger::LimitedBy,
    reason: String,
}

/// The DUT program's frame counters in a `dut status` entry: frames seen, and
/// frames sent back (XDP_TX, or a user-space DUT's answers); an error when the
/// entry has none (not one of dut's programs).
fn dut_counts(status: &Attached) -> Result<ledger::DutCounts> {
    let c = status.counters.with_context(|| {
        format!(
            "dut status: {} on {} has no counters (not one of dut's programs)",
            status.program, status.iface
        )
    })?;
    Ok(ledger::DutCounts {
        packets: c.packets,
        tx: c.tx,
    })
}

/// A busy neighbour tenant: a flood into a checksum program.
struct Neighbour {
    /// Its own lab, when the topology has no tenants (a stand-in); held so
    /// that dropping the neighbour tears it down.
    _bed: Option<Testbed>,
    /// Where its program runs.
    port: DutPort,
    /// Generator namespace and port of its flood.
    gen_port: (String, &'static str),
    /// Tenant it is (tenants topology).
    tenant: Option<u8>,
    /// Flood rate (`None`: as fast as it goes).
    rate: Option<crate::experiment::Rate>,
}

/// A DUT program's place: `dut --netns NETNS ... --iface IFACE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DutPort {
    /// Namespace.
    pub netns: String,
    /// Interface.
    pub iface: String,
}

impl DutPort {
    /// dut0 in lab `lab`'s DUT namespace.
    pub fn of_lab(lab: &str) -> DutPort {
        DutPort {
            netns: crate::dut_netns(lab),
            iface: crate::DUT_IFACE.to_owned(),
        }
    }
    /// The host's second port dut1 (tenants lab).
    pub fn second(lab: &str) -> DutPort {
        DutPort {
            netns: crate::dut_netns(lab),
            iface: crate::DUT1_IFACE.to_owned(),
        }
    }
    /// Tenant `i`'s ten0 inside its namespace (tenants lab).
    pub fn tenant(lab: &str, i: u8) -> DutPort {
        DutPort {
            netns: crate::tenant_netns(lab, i),
            iface: crate::TENANT_IFACE.to_owned(),
        }
    }
}

/// gen arguments that address tenant `t` (its IPv4 and MAC address).
/// gen's destination for tenant `t` (its address and MAC: the bridge forwards by MAC).
fn tenant_dst(b: &mut records::args::Gen, t: u8) {
    b.dst_ip = Some(crate::tenant_ip(t));
    b.dst_mac = Some(crate::tenant_mac(t));
}

impl std::fmt::Display for DutPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.iface, self.netns)
    }
}

impl Drop for PointRun<'_> {
    fn drop(&mut self) {
        // The DUT process first, then the lab.
        if let Some(c) = self.dut_fg.take() {
            let _ = c.stop(Duration::from_secs(3));
        }
        self.neighbour.take();
        self.bed.take();
    }
}

impl<'a> PointRun<'a> {
    fn set_up(
        exp: &Experiment,
        series: &'a Series,
        x: f64,
        plan: &Plan,
        raw: &Path,
    ) -> Result<PointRun<'a>> {
        let queues = if exp.parameter == Param::Queues {
            x as u32
        } else {
            series.queues
        };
        let lab = crate::unique_name("run");
        let tenants = exp.topology == Topo::Tenants;
        // In the tenants lab, rates are measured on the host's second port
        // (no switch, no mirror); answers come back by the switched port.
        let second = tenants && series.measure == Measure::DutRate;
        let port = match (tenants, series.at) {
            (true, At::Tenant) => DutPort::tenant(&lab, series.tenant),
            (true, At::Host) if second => DutPort::second(&lab),
            _ => DutPort::of_lab(&lab),
        };
        let gen_port = (
            crate::gen_netns(&lab),
            if second {
                crate::GEN1_IFACE
            } else {
                crate::GEN_IFACE
            },
        );
        let mut pr = PointRun {
            series,
            x,
            parameter: exp.parameter,
            duration: plan.duration,
            raw: raw.to_path_buf(),
            dut_fg: None,
            bed: None,
            port,
            gen_port,
            dst_tenant: tenants.then_some(series.dst_tenant),
            neighbour: None,
            queues,
        };
        if series.measure == Measure::UpdateRate {
            return Ok(pr);
        }
        let topology = match exp.topology {
            Topo::Direct => Topology::Direct,
            Topo::Switched => Topology::Switched,
            Topo::Tenants => Topology::Tenants,
        };
        let bed = Testbed::up(&UpOptions {
            name: lab.clone(),
            topology,
            queues,
        })
        .context("lab up")?;
        pr.bed = Some(bed);
        if let Some(prog) = &series.program {
            let checksums = if exp.parameter == Param::Checksums {
                Some(x as u32)
            } else {
                series.checksums
            };
            let opts = InstallOptions {
                program: prog,
                mode: &series.mode,
                profile: (prog == "dns-cache").then_some(series.profile.as_str()),
                checksums,
                only_dst: series.only_dst.as_deref(),
            };
            pr.dut_fg = install(&pr.port, &opts, &pr.file("dut-install", "txt"))?;
        }
        let nb_checksums = if exp.parameter == Param::NeighbourChecksums {
            Some(x as u32)
        } else {
            series.neighbour_checksums
        };
        if let Some(n) = nb_checksums {
            let (bed, port, only_dst, gen_port, tenant) = if tenants {
                // Tenant 2, flooded through the host's second port; its
                // program in its own driver or in the host's, guarded.
                let (port, only_dst) = match series.neighbour_at {
                    At::Tenant => (DutPort::tenant(&lab, 2), None),
                    At::Host => (
                        DutPort::second(&lab),
                        Some(format!("{}/32", crate::tenant_ip(2))),
                    ),
                };
                let gen_port = (crate::gen_netns(&lab), crate::GEN1_IFACE);
                (None, port, only_dst, gen_port, Some(2))
            } else {
                // A stand-in: its own generator and DUT port on the same
                // machine, its program in its own driver.
                let nb = Testbed::up(&UpOptions {
                    name: crate::unique_name("nb"),
                    topology: Topology::Direct,
                    queues: 1,
                })
                .context("neighbour lab up")?;
                let port = DutPort::of_lab(nb.name());
                let gen_port = (crate::gen_netns(nb.name()), crate::GEN_IFACE);
                (Some(nb), port, None, gen_port, None)
            };
            let opts = InstallOptions {
                program: "checksum",
                mode: "native",
                profile: None,
                checksums: Some(n),
                only_dst: only_dst.as_deref(),
            };
            install(&port, &opts, &pr.file("neighbour-dut-install", "txt"))?;
            let nb = Neighbour {
                _bed: bed,
                port,
                gen_port,
                tenant,
                rate: series.neighbour_rate,
            };
            pr.neighbour = Some(nb);
        }
        Ok(pr)
    }

    fn lab(&self) -> Result<&str> {
        self.bed
            .as_ref()
            .map(|b| b.name())
            .ok_or_else(|| anyhow!("no lab"))
    }

    fn file(&self, tool: &str, ext: &str) -> PathBuf {
        self.raw.join(format!(
            "{}_x{}_{tool}.{ext}",
            slug(&self.series.name),
            fmt_num(self.x)
        ))
    }

    fn rep_file(&self, rep: u32, tool: &str) -> PathBuf {
        self.raw.join(format!(
            "{}_x{}_r{rep}_{tool}.json",
            slug(&self.series.name),
            fmt_num(self.x)
        ))
    }

    fn rate(&self) -> Option<crate::experiment::Rate> {
        if self.parameter == Param::Rate {
            Some(crate::experiment::Rate::Pps(self.x))
        } else {
            self.series.rate
        }
    }

    fn gen_cmd(&self, duration: Duration, rx: bool) -> Result<Command> {
        self.lab()?;
        let mut b = records::args::Gen {
            netns: Some(self.gen_port.0.clone()),
            iface: self.gen_port.1.to_owned(),
            profile: self.series.profile.clone(),
            engine: Some(self.series.engine),
            rate: self.rate(),
            duration: Some(duration),
            queues: Some(self.queues),
            no_rx: !rx,
            json: true,
            ..records::args::Gen::default()
        };
        if let Some(t) = self.dst_tenant {
            tenant_dst(&mut b, t);
        } else if let Some(d) = &self.series.dst_ip {
            // Another address on the DUT's link: gen would find no neighbour
            // entry for it, so the frame still goes to the DUT's MAC.
            b.dst_ip = Some(d.parse().with_context(|| format!("dst_ip `{d}`"))?);
            b.dst_mac = Some(crate::DUT_MAC);
        }
        let mut c = Command::new(tools::locate("gen")?);
        c.args(b.argv());
        Ok(c)
    }

    fn measure(&self, rep: u32) -> Result<Measured> {
        match self.series.measure {
            Measure::DutRate => self.dut_rate(rep),
            Measure::AnswerRate => self.answer_rate(rep),
            Measure::ResponseTime => self.response_time(rep),
            Measure::UpdateRate => Ok(Measured {
                values: self.update_rate(rep)?,
                ledger: None,
            }),
        }
    }

    /// Every interface counter of the lab and the DUT program's counters, read
    /// before and after a measurement for its ledger.
    fn counters(&self) -> Result<(ledger::Snapshot, Option<ledger::DutCounts>)> {
        let bed = self.bed.as_ref().ok_or_else(|| anyhow!("no lab"))?;
        let snap = ledger::Snapshot::take(&bed.namespaces())?;
        let dut = if self.series.program.is_some() {
            Some(dut_counts(&dut_status(&self.port)?)?)
        } else {
            None
        };
        Ok((snap, dut))
    }

    /// The path the measured traffic takes through this point's lab.
    fn path(&self) -> Result<ledger::Path> {
        use ledger::{Hop, Place, Port};
        let lab = self.lab()?;
        let (g, s, d, m) = (
            crate::gen_netns(lab),
            crate::sw_netns(lab),
            crate::dut_netns(lab),
            crate::mon_netns(lab),
        );
        let hop = |a: &str, ai: &str, b: &str, bi: &str, place| Hop {
            from: Port::new(a, ai),
            to: Port::new(b, bi),
            place,
        };
        let gen_if = self.gen_port.1;
        let topology = self.bed.as_ref().map(Testbed::topology);
        Ok(match topology {
            Some(Topology::Direct) => ledger::Path {
                request: vec![hop(&g, gen_if, &d, crate::DUT_IFACE, Place::Dut)],
                answer: vec![hop(&d, crate::DUT_IFACE, &g, gen_if, Place::Generator)],
                mirror: None,
            },
            Some(Topology::Tenants) if gen_if == crate::GEN1_IFACE => ledger::Path {
                request: vec![hop(&g, gen_if, &d, crate::DUT1_IFACE, Place::Dut)],
                answer: vec![],
                mirror: None,
            },
            _ => {
                let mut request = vec![
                    hop(&g, gen_if, &s, crate::SW_GEN_IFACE, Place::Path),
                    hop(&s, crate::SW_DUT_IFACE, &d, crate::DUT_IFACE, Place::Dut),
                ];
                let mut answer = vec![
                    hop(&d, crate::DUT_IFACE, &s, crate::SW_DUT_IFACE, Place::Path),
                    hop(&s, crate::SW_GEN_IFACE, &g, gen_if, Place::Generator),
                ];
                if let Some(t) = self.dst_tenant {
                    // Through the host's bridge to the tenant's virtual NIC.
                    let tn = crate::tenant_netns(lab, t);
                    let vif = crate::tenant_vif(t);
                    request.push(hop(&d, &vif, &tn, crate::TENANT_IFACE, Place::Dut));
                    answer.clear();
                }
                let mirror = Some((
                    vec![
                        Port::new(&s, crate::SW_GEN_IFACE),
                        Port::new(&s, crate::SW_DUT_IFACE),
                    ],
                    hop(
                        &s,
                        crate::SW_MON_IFACE,
                        &m,
                        crate::MON_IFACE,
                        Place::Monitor,
                    ),
                ));
                ledger::Path {
                    request,
                    answer,
                    mirror,
                }
            }
        })
    }

    /// The ledger of a measurement from the counters before and after it, and
    /// what limited it.
    fn account(
        &self,
        before: &(ledger::Snapshot, Option<ledger::DutCounts>),
        generator: Option<&GenFinal>,
        captured: Option<u64>,
    ) -> Result<Account> {
        // Frames in flight arrive and the counters settle.
        thread::sleep(Duration::from_millis(300));
        let after = self.counters()?;
        let dut = after.1.zip(before.1).map(|(a, b)| ledger::DutCounts {
            packets: a.packets.saturating_sub(b.packets),
            tx: a.tx.saturating_sub(b.tx),
        });
        let path = self.path()?;
        let l = ledger::build(
            &path,
            &after.0.since(&before.0),
            &ledger::Tools {
                generator,
                dut,
                captured,
                answers: self.series.measure != Measure::DutRate,
            },
        );
        let (by, why) = ledger::classify(&l, generator);
        Ok(Account {
            ledger: l,
            limited_by: by,
            reason: why,
        })
    }

    /// DUT counters over a window of `duration` inside the source's run.
    fn dut_rate(&self, rep: u32) -> Result<Measured> {
        self.lab()?;
        let before = self.counters()?;
        // The source is stopped once the window is over: a long margin
        // costs nothing and covers a slow start on a loaded machine.
        let margin = Duration::from_secs(60);
        let source = match self.series.source {
            Source::Gen => Child::spawn(self.gen_cmd(self.duration + margin, false)?)?,
            Source::Trafgen => {
                let cfg = self
                    .raw
                    .join(format!("trafgen-{}.cfg", slug(&self.series.profile)));
                write_trafgen_cfg(&self.series.profile, &cfg)?;
                let t = records::args::Trafgen {
                    dev: self.gen_port.1.to_owned(),
                    conf: cfg,
                    cpus: Some(self.queues),
                    num: None,
                    no_sock_mem: true,
                    notouch_irq: true,
                };
                let mut c = Command::new("ip");
                c.args(t.netns_exec(&self.gen_port.0));
                Child::spawn(c)?
            }
            Source::Dnsperf => bail!("dnsperf cannot drive dut-rate"),
        };
        // (dut status window, user-space DUT (CPU ns, seconds), machine CPU).
        type Window = (Attached, Option<(f64, f64)>, Option<CpuWindow>);
        let window = (|| -> Result<Window> {
            wait_for_traffic(&self.port)?;
            // dut samples counters and BPF run-time statistics (which it
            // switches on for the window) before and after it. A user-space
            // DUT's own CPU time is read around the same window, and so is
            // the machine's softirq time.
            let pid = self.dut_fg.as_ref().and_then(Child::id);
            let c0 = pid.and_then(tools::cpu_time_ns);
            let m0 = tools::machine_softirq_ns();
            let t0 = Instant::now();
            let w = dut_status_window(&self.port, self.duration)?;
            let secs = t0.elapsed().as_secs_f64();
            let user = c0
                .zip(pid.and_then(tools::cpu_time_ns))
                .map(|(a, b)| (b - a, secs));
            let cpu = m0
                .zip(tools::machine_softirq_ns())
                .map(|(m0, m1)| CpuWindow {
                    softirq_ns: m1 - m0,
                    secs,
                });
            Ok((w, user, cpu))
        })();
        let out = source.stop(Duration::from_secs(5))?;
        std::fs::write(
            self.rep_file(rep, source_name(self.series.source)),
            format!("{}{}", out.stdout(), out.stderr),
        )
        .ok();
        let (w, user, cpu) = window?;
        if let Ok(line) = serde_json::to_string(&w) {
            std::fs::write(self.rep_file(rep, "dut-status-window"), format!("{line}\n")).ok();
        }
        let rates = w.rates.with_context(|| {
            format!("dut status --window: no rates for {} (a program without counters)", w.program)
        })?;
        let mut v = vec![("drop_pps", rates.drop_pps), ("processed_pps", rates.packets_pps)];
        // Kernel part: the XDP program's run time per packet (for a
        // user-space DUT: its redirect program). User-space part: the DUT
        // process's CPU time over the window per packet it processed.
        let kernel = w.ns_per_packet;
        let user = user.and_then(|(cpu_ns, secs)| {
            let pkts = rates.packets_pps * secs;
            (pkts > 0.0).then(|| cpu_ns / pkts)
        });
        match (kernel, user) {
            (k, Some(u)) => v.push(("ns_per_packet", k.unwrap_or(0.0) + u)),
            (Some(k), None) => v.push(("ns_per_packet", k)),
            (None, None) => {}
        }
        v.push(("pass_pps", rates.pass_pps));
        // Accounting (tenants lab): what the tenant is charged (its
        // process, and its program when that runs in its own driver) and
        // what the host's kernel spent on its packets: the machine's
        // softirq time (veth hand-offs, bridge, XDP, AF_XDP copies; also
        // when the program runs in the host's driver: work a per-tenant
        // account would not see), less the tenant's own program.
        if self.dst_tenant.is_some()
            && let Some(cpu) = cpu
            && rates.packets_pps > 0.0
        {
            let pps = rates.packets_pps;
            let pkts = pps * cpu.secs;
            // Per packet: the tenant process (already per packet above) and
            // the program's run time.
            let tenant = user.unwrap_or(0.0)
                + if self.series.at == At::Tenant {
                    kernel.unwrap_or(0.0)
                } else {
                    0.0
                };
            let prog_in_tenant = if self.series.at == At::Tenant {
                kernel.unwrap_or(0.0)
            } else {
                0.0
            };
            let host = (cpu.softirq_ns / pkts - prog_in_tenant).max(0.0);
            v.push(("cpu_tenant_ns_per_packet", tenant));
            v.push(("cpu_host_ns_per_packet", host));
        }
        let f: Option<GenFinal> = if self.series.source == Source::Gen {
            let f: GenFinal = out.final_as("gen final")?;
            push_offered(&f, &mut v);
            Some(f)
        } else {
            None
        };
        let account = self.account(&before, f.as_ref(), None)?;
        Ok(Measured {
            values: v,
            ledger: Some(account),
        })
    }

    fn answer_rate(&self, rep: u32) -> Result<Measured> {
        let before = self.counters()?;
        match self.series.source {
            Source::Gen => {
                let out = tools::run(self.gen_cmd(self.duration, true)?)?;
                std::fs::write(self.rep_file(rep, "gen"), out.stdout()).ok();
                out.check()?;
                let f: GenFinal = out.final_as("gen final")?;
                let mut v = vec![("answered_pps", f.rx_pps)];
                push_offered(&f, &mut v);
                let account = self.account(&before, Some(&f), None)?;
                Ok(Measured {
                    values: v,
                    ledger: Some(account),
                })
            }
            Source::Dnsperf => {
                let lab = self.lab()?.to_owned();
                let qf = self
                    .raw
                    .join(format!("dnsperf-{}.txt", slug(&self.series.profile)));
                write_dnsperf_queries(&self.series.profile, &qf)?;
                let mut c = Command::new("ip");
                c.args([
                    "netns",
                    "exec",
                    &crate::gen_netns(&lab),
                    "dnsperf",
                    "-s",
                    &crate::DUT_IP.to_string(),
                    "-d",
                ]);
                c.arg(&qf).args([
                    "-l",
                    &fmt_num(self.duration.as_secs_f64()),
                    "-c",
                    "1",
                    "-T",
                    "1",
                    "-q",
                    "500",
                ]);
                let out = tools::run(c)?;
                std::fs::write(
                    self.rep_file(rep, "dnsperf").with_extension("txt"),
                    format!("{}{}", out.stdout(), out.stderr),
                )
                .ok();
                out.check()?;
                let qps = parse_dnsperf(&out.stdout()).with_context(|| {
                    format!("`{}` printed no 'Queries per second'", out.command)
                })?;
                let account = self.account(&before, None, None)?;
                Ok(Measured {
                    values: vec![("answered_pps", qps)],
                    ledger: Some(account),
                })
            }
            Source::Trafgen => bail!("trafgen cannot drive answer-rate"),
        }
    }

    fn response_time(&self, rep: u32) -> Result<Measured> {
        let lab = self.lab()?.to_owned();
        // A busy neighbour: flood its checksum program for the whole
        // measurement, starting once its DUT sees traffic.
        let flood = match &self.neighbour {
            None => None,
            Some(nb) => {
                let mut b = records::args::Gen {
                    netns: Some(nb.gen_port.0.clone()),
                    iface: nb.gen_port.1.to_owned(),
                    profile: "min-multi-flow".into(),
                    rate: nb.rate,
                    duration: Some(self.duration + Duration::from_secs(60)),
                    no_rx: true,
                    json: true,
                    ..records::args::Gen::default()
                };
                if let Some(t) = nb.tenant {
                    tenant_dst(&mut b, t);
                }
                let mut c = Command::new(tools::locate("gen")?);
                c.args(b.argv());
                let child = Child::spawn(c)?;
                wait_for_traffic(&nb.port)?;
                Some(child)
            }
        };
        let base = self.rep_file(rep, "tstamp");
        let before = self.counters()?;
        let mut ts = start_tstamp(&lab, &[("--hdrh", base.with_extension("hdr"))])?;
        let gen_out = tools::run(self.gen_cmd(self.duration, true)?);
        // Late answers still count.
        thread::sleep(Duration::from_millis(300));
        let ts_out = ts.take().context("tstamp")?.stop(Duration::from_secs(5))?;
        std::fs::write(&base, ts_out.stdout()).ok();
        if let Some(f) = flood {
            let nb_status = self
                .neighbour
                .as_ref()
                .and_then(|nb| dut_status(&nb.port).ok());
            let out = f.stop(Duration::from_secs(5))?;
            std::fs::write(
                self.rep_file(rep, "neighbour-gen"),
                format!(
                    "{}{}\n",
                    out.stdout(),
                    nb_status
                        .and_then(|s| serde_json::to_string(&s).ok())
                        .unwrap_or_default()
                ),
            )
            .ok();
        }
        let gen_out = gen_out?;
        std::fs::write(self.rep_file(rep, "gen"), gen_out.stdout()).ok();
        gen_out.check()?;
        let f: TstampFinal = ts_out.final_as("tstamp final")?;
        let p50 = f
            .rtt_ns
            .p50
            .context("tstamp matched no request with its response (rtt_ns.p50 is null)")?;
        let p99 = f.rtt_ns.p99.context("tstamp: rtt_ns.p99 is null")?;
        let mut v = vec![
            ("rtt_p50_us", p50 as f64 / 1e3),
            ("rtt_p99_us", p99 as f64 / 1e3),
        ];
        if f.requests > 0 {
            v.push(("lost_percent", 100.0 * f.lost as f64 / f.requests as f64));
        }
        let g: GenFinal = gen_out.final_as("gen final")?;
        v.push(("answered_pps", g.rx_pps));
        let account = self.account(&before, Some(&g), Some(f.frames))?;
        Ok(Measured {
            values: v,
            ledger: Some(account),
        })
    }

    fn update_rate(&self, rep: u32) -> Result<Vec<(&'static str, f64)>> {
        let batch = if self.parameter == Param::Batch {
            if self.x < 1.0 || self.x.fract() != 0.0 {
                bail!("batch size {} is not a whole number of at least 1", fmt_num(self.x));
            }
            self.x as usize
        } else {
            256
        };
        let b = records::args::Dut {
            netns: None,
            json: true,
            cmd: DutCmd::UpdateBench {
                profile: self.series.profile.clone(),
                batch: Some(batch),
                duration: Some(self.duration),
            },
        };
        let mut c = Command::new(tools::locate("dut")?);
        c.args(b.argv());
        let out = tools::run(c)?;
        std::fs::write(self.rep_file(rep, "dut-update-bench"), out.stdout()).ok();
        out.check()?;
        let mut v = Vec::new();
        for r in out.all_of::<records::dut::UpdateBench>(records::Kind::Final, "dut update-bench")? {
            v.push(match r.method {
                records::dut::Method::Batch => ("updates_batch_per_s", r.updates_per_s),
                records::dut::Method::Single => ("updates_single_per_s", r.updates_per_s),
            });
        }
        if !v.iter().any(|(m, _)| *m == "updates_batch_per_s") {
            bail!("`{}` printed no record with method \"batch\"", out.command);
        }
        Ok(v)
    }
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Gen => "gen",
        Source::Trafgen => "trafgen",
        Source::Dnsperf => "dnsperf",
    }
}

/// Sleeps, returning early with an error on Ctrl-C.
pub fn sleep_checked(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if tools::stop_requested() {
            bail!("interrupted");
        }
        thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    Ok(())
}

/// CPU time over a measurement window.
#[derive(Debug, Clone, Copy)]
struct CpuWindow {
    /// The whole machine, in irq and softirq context.
    softirq_ns: f64,
    /// Window length.
    secs: f64,
}

/// Waits until the program on `port` counts packets (up to 60 s).
fn wait_for_traffic(port: &DutPort) -> Result<()> {
    let packets = |a: Attached| a.counters.map_or(0, |c| c.packets);
    let p0 = packets(dut_status(port)?);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        sleep_checked(Duration::from_millis(100))?;
        if packets(dut_status(port)?) > p0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no traffic reached the DUT program on {port} within 60 s");
        }
    }
}

/// What `dut install` gets.
#[derive(Debug, Clone, Copy)]
pub struct InstallOptions<'a> {
    /// Program.
    pub program: &'a str,
    /// Execution point.
    pub mode: &'a str,
    /// Profile to fill the cache from.
    pub profile: Option<&'a str>,
    /// Checksums per packet.
    pub checksums: Option<u32>,
    /// Tenant guard.
    pub only_dst: Option<&'a str>,
}

/// `dut --netns NETNS install ... --iface IFACE`. For `userspace`, the DUT
/// runs in the foreground: the returned child must live while measuring.
pub fn install(port: &DutPort, o: &InstallOptions<'_>, log: &Path) -> Result<Option<Child>> {
    let mode: records::dut::Mode = o.mode.parse().map_err(|e: String| anyhow!("dut install: {e}"))?;
    let userspace = mode == records::dut::Mode::Userspace;
    let b = records::args::Dut {
        netns: Some(port.netns.clone()),
        json: true,
        cmd: DutCmd::Install(records::args::DutInstall {
            program: o.program.to_owned(),
            iface: port.iface.clone(),
            mode: Some(mode),
            checksums: o.checksums.map(u64::from),
            profile: o.profile.map(str::to_owned),
            only_dst: o.only_dst.map(str::to_owned),
            // The user-space DUT runs in the foreground, for as long as we measure.
            foreground: userspace,
            force: false,
            // Process-scoped on behalf of this lab process: if lab is killed, what it
            // installed is an orphan the next run takes over, not a persistent install.
            owner_pid: (!userspace).then(std::process::id),
        }),
    };
    let mut c = Command::new(tools::locate("dut")?);
    c.args(b.argv());
    if userspace {
        let mut child = Child::spawn(c)?;
        // Ready once dut status shows the program on dut0.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if child.exited() {
                let out = child.wait()?;
                bail!(
                    "`{}` exited (status {:?}): {}",
                    out.command,
                    out.status,
                    out.stderr.trim()
                );
            }
            // The user-space point's counters show once it has written its first
            // state (the redirect program alone has none).
            if dut_status(port).is_ok_and(|a| a.counters.is_some()) {
                return Ok(Some(child));
            }
            if Instant::now() > deadline {
                bail!(
                    "`{}` did not show up in `dut status` within 60 s",
                    child.command()
                );
            }
            sleep_checked(Duration::from_millis(200))?;
        }
    }
    let out = tools::run(c)?;
    std::fs::write(
        log,
        format!("{}\n{}{}", out.command, out.stdout(), out.stderr),
    )
    .ok();
    out.check()?;
    Ok(None)
}

/// The port's entry of `dut --netns NETNS --output json status --iface IFACE`.
pub fn dut_status(port: &DutPort) -> Result<Attached> {
    status_cmd(port, None)
}

/// The port's entry of `dut status --window D`: rates and ns_per_packet
/// over the window.
pub fn dut_status_window(port: &DutPort, window: Duration) -> Result<Attached> {
    status_cmd(port, Some(window))
}

fn status_cmd(port: &DutPort, window: Option<Duration>) -> Result<Attached> {
    let b = records::args::Dut {
        netns: Some(port.netns.clone()),
        json: true,
        cmd: DutCmd::Status {
            iface: Some(port.iface.clone()),
            window,
        },
    };
    let mut c = Command::new(tools::locate("dut")?);
    c.args(b.argv());
    let out = tools::run(c)?;
    out.check()?;
    let st = records::dut::Status::parse(&out.lines.join("\n"))
        .with_context(|| format!("reading the output of `{}`", out.command))?;
    st.on(&port.iface)
        .cloned()
        .ok_or_else(|| anyhow!("`{}`: no program on {port}", out.command))
}

/// Starts `tstamp` on mon0 of `lab` and waits for its ready line.
pub fn start_tstamp(lab: &str, files: &[(&str, PathBuf)]) -> Result<Option<Child>> {
    let mut b = records::args::Tstamp {
        netns: Some(crate::mon_netns(lab)),
        iface: crate::MON_IFACE.to_owned(),
        json: true,
        ..records::args::Tstamp::default()
    };
    for (flag, p) in files {
        match *flag {
            "--hdrh" => b.hdrh = Some(p.clone()),
            "--hist-csv" => b.hist_csv = Some(p.clone()),
            "--plot" => b.plot = Some(p.clone()),
            other => bail!("internal: tstamp output flag {other}"),
        }
    }
    let mut c = Command::new(tools::locate("tstamp")?);
    c.args(b.argv());
    let mut child = Child::spawn(c)?;
    child.wait_for_type("ready", Duration::from_secs(60))?;
    Ok(Some(child))
}

/// A trafgen configuration sending the profile's first frame.
pub fn trafgen_config(profile: &str) -> Result<String> {
    let p = profiles::Profile::load(profile).map_err(|e| anyhow!("{e}"))?;
    let t = profiles::Template::new(&p, profiles::TemplateOptions::default())
        .map_err(|e| anyhow!("{e}"))?;
    let mut s = format!(
        "# {} ({} bytes + FCS), written by lab run\n{{\n",
        p.name,
        t.len()
    );
    for chunk in t.frame().chunks(12) {
        let line: Vec<String> = chunk.iter().map(|b| format!("0x{b:02x}")).collect();
        let _ = writeln!(s, "  {},", line.join(", "));
    }
    s.push_str("}\n");
    Ok(s)
}

fn write_trafgen_cfg(profile: &str, path: &Path) -> Result<()> {
    store::write_atomic(path, trafgen_config(profile)?.as_bytes())
}

/// dnsperf's input: one `NAME A` line per name of the profile's set.
pub fn dnsperf_queries(profile: &str) -> Result<String> {
    let p = profiles::Profile::load(profile).map_err(|e| anyhow!("{e}"))?;
    let dns = p
        .dns
        .as_ref()
        .ok_or_else(|| anyhow!("profile {profile} has no DNS workload"))?;
    let n = dns.names.count().min(100_000);
    let mut s = String::new();
    for i in 0..n {
        let _ = writeln!(s, "{} A", dns.names.name(i));
    }
    Ok(s)
}

fn write_dnsperf_queries(profile: &str, path: &Path) -> Result<()> {
    store::write_atomic(path, dnsperf_queries(profile)?.as_bytes())
}

/// `Queries per second:   12345.6` from dnsperf's report.
pub fn parse_dnsperf(out: &str) -> Option<f64> {
    out.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Queries per second:")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_durations() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(1_795_000_000), "20261118-110640");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(fmt_secs(5.2), "5s");
        assert_eq!(fmt_secs(125.0), "2m05s");
        assert_eq!(fmt_secs(3700.0), "1h01m");
    }

    #[test]
    fn dnsperf_report_is_parsed() {
        let out =
            "Statistics:\n\n  Queries sent:         100\n  Queries per second:   174012.345678\n";
        assert_eq!(parse_dnsperf(out), Some(174_012.345_678));
        assert_eq!(parse_dnsperf("nothing"), None);
    }

    #[test]
    fn trafgen_config_carries_the_profile_frame() {
        let cfg = trafgen_config("min-single-flow").unwrap();
        let bytes = cfg.matches("0x").count();
        assert_eq!(bytes, 60, "64-byte frame without FCS:\n{cfg}");
        assert!(
            cfg.contains("0x02, 0x00, 0x00, 0x00, 0x00, 0x02"),
            "dst MAC first:\n{cfg}"
        );
    }

    #[test]
    fn dnsperf_queries_list_the_names() {
        let q = dnsperf_queries("dns-small").unwrap();
        assert_eq!(q.lines().count(), 1296);
        assert!(q.lines().all(|l| l.ends_with(" A")));
        assert!(dnsperf_queries("min-single-flow").is_err());
    }

    #[test]
    fn every_measure_has_known_metrics() {
        for m in [
            Measure::DutRate,
            Measure::AnswerRate,
            Measure::ResponseTime,
            Measure::UpdateRate,
        ] {
            for name in metrics_of(m) {
                assert_eq!(metric(name).name, *name);
            }
        }
    }
}
