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

use crate::experiment::{At, Experiment, Measure, NdrSpec, Param, Plan, Series, Source, Topo};
use crate::ledger;
use crate::store::{self, Point, Store, fmt_num};
use records::args::DutCmd;
use records::dut::Attached;
use records::generator::Final as GenFinal;
use records::tstamp::Final as TstampFinal;

use crate::gens::{self, MAX_GEN_HOSTS, MultiGen, RemoteGen};
use crate::remote::Site;
use crate::tools::{self, Child};
use testbed::{Testbed, Topology, UpOptions};

/// Options of `lab run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Output directory.
    pub out: PathBuf,
    /// Short run.
    pub quick: bool,
    /// `--repetitions`: repetitions per point instead of the experiment's.
    pub repetitions: Option<u32>,
    /// `--testbed FILE`: on the hosts of a testbed file over ssh instead of
    /// local labs (what its hosts cannot give is refused up front).
    pub testbed: Option<PathBuf>,
    /// `--rate max`: on a testbed, series may send unpaced (gen's maximum).
    pub unpaced_ok: bool,
}

/// The hosts of `lab run --testbed FILE`, checked by pre-flight.
struct RemoteRun {
    /// A queue sweep's interfaces (restored when dropped).
    queues: Option<crate::remote_measure::QueueSweep>,
    /// The ssh session (control masters stopped when dropped).
    _ssh: std::sync::Arc<crate::remote::Ssh>,
    /// The generator hosts, in the file's order.
    gens: Vec<std::sync::Arc<crate::remote::RemoteHost>>,
    /// The DUT host.
    dut: std::sync::Arc<crate::remote::RemoteHost>,
    /// The monitor host, if the file has one (where several generator hosts'
    /// start is measured).
    mon: Option<std::sync::Arc<crate::remote::RemoteHost>>,
    /// Every host's clock synchronisation state, read after pre-flight.
    clocks: Vec<crate::remote::ClockState>,
    /// Every host, for the ledger, tstamp and the DUT host's counters.
    hosts: crate::remote_measure::Hosts,
    /// The tenants on the DUT host (`[[tenant]]`, tenant 1 first).
    tenants: Vec<std::sync::Arc<crate::remote::RemoteHost>>,
    /// The DUT host's second port (`[dut] second_iface`), where the second
    /// generator host's traffic enters.
    dut_second_iface: Option<String>,
}

impl RemoteRun {
    /// Refuses what is not supported over ssh yet (one line naming the series),
    /// then runs pre-flight on every host of the file.
    fn open(exp: &Experiment, path: &Path, unpaced_ok: bool) -> Result<RemoteRun> {
        let file = crate::testbed_file::TestbedFile::load(path)?;
        crate::remote_measure::refuse(exp, &file, unpaced_ok)?;
        if file.gens.len() > MAX_GEN_HOSTS {
            bail!(
                "{}: lab run --testbed: not supported yet: {} generator hosts (at most {MAX_GEN_HOSTS} [[gen]])",
                file.origin,
                file.gens.len()
            );
        }
        // With tenants the first generator host sends the measured traffic and
        // the second a busy neighbour's flood: not shares of one rate.
        let tenants = exp.topology == Topo::Tenants;
        if file.gens.len() > 1 && !tenants {
            // Each host its own source address: DNS (port, ID) pairs and probe
            // sequences are then unique across hosts (tstamp matches on the client
            // address too).
            let mut seen = Vec::new();
            for g in &file.gens {
                match g.ip {
                    None => bail!(
                        "{}: {}: several generator hosts need `ip` on every [[gen]] (each host sends from its own address)",
                        file.origin,
                        g.display()
                    ),
                    Some(ip) if seen.contains(&ip) => bail!(
                        "{}: {}: `ip = \"{ip}\"` is another generator host's too: give each [[gen]] its own address",
                        file.origin,
                        g.display()
                    ),
                    Some(ip) => seen.push(ip),
                }
            }
        }
        let ssh = crate::remote::Ssh::new(&file)?;
        eprintln!(
            "lab run: pre-flight of {} host(s) in {}",
            file.endpoints().len(),
            file.origin
        );
        let hosts = crate::remote::preflight(&ssh, &file)?;

        let gens = (0..file.gens.len())
            .map(|i| crate::remote::host(&hosts, &format!("gen[{i}]")).cloned())
            .collect::<Result<Vec<_>>>()?;
        let clocks = hosts.iter().map(|h| h.clock_state()).collect();
        let tenant_hosts = (1..=file.tenants.len())
            .map(|i| crate::remote::host(&hosts, &format!("tenant[{i}]")).cloned())
            .collect::<Result<Vec<_>>>()?;
        let measured_gens = if tenants {
            gens[..1].to_vec()
        } else {
            gens.clone()
        };
        let measure_hosts = crate::remote_measure::Hosts {
            gens: measured_gens,
            dut: crate::remote::host(&hosts, "dut")?.clone(),
            mon: crate::remote::host(&hosts, "mon").ok().cloned(),
        };
        crate::remote_measure::check_peers(&measure_hosts, exp)?;
        // A queue sweep, or series with a fixed queue count above one: the DUT's
        // and gen's interfaces get each point's count with `ethtool -L` and
        // their own back at the end.
        let fixed = exp.series.iter().max_by_key(|s| s.queues);
        let queues = match fixed {
            _ if exp.parameter == Param::Queues => {
                let most = exp
                    .values
                    .iter()
                    .chain(&exp.quick_values)
                    .fold(1.0_f64, |a, b| a.max(*b))
                    .max(fixed.map_or(1.0, |s| f64::from(s.queues)));
                let at = format!(
                    "{}:{}: parameter",
                    exp.origin,
                    crate::remote_measure::key_line(&exp.text, None, "parameter")
                );
                Some(crate::remote_measure::QueueSweep::open(
                    &measure_hosts,
                    most as u32,
                    &at,
                    "the sweep goes to",
                )?)
            }
            Some(s) if s.queues > 1 => {
                let at = format!(
                    "{}:{}: queues",
                    exp.origin,
                    crate::remote_measure::key_line(&exp.text, Some(&s.name), "queues")
                );
                Some(crate::remote_measure::QueueSweep::open(
                    &measure_hosts,
                    s.queues,
                    &at,
                    &format!("series `{}` asks for", s.name),
                )?)
            }
            _ => None,
        };
        Ok(RemoteRun {
            queues,
            hosts: measure_hosts,
            gens,
            dut: crate::remote::host(&hosts, "dut")?.clone(),
            mon: crate::remote::host(&hosts, "mon").ok().cloned(),
            clocks,
            _ssh: ssh,
            tenants: tenant_hosts,
            dut_second_iface: file.dut_second_iface.clone(),
        })
    }
}

impl RunOptions {
    /// The experiment's settings with `--quick` and `--repetitions` applied.
    pub fn plan(&self, exp: &Experiment) -> crate::experiment::Plan {
        let mut plan = exp.plan(self.quick);
        if let Some(r) = self.repetitions {
            plan.repetitions = r;
        }
        plan
    }
}

/// Default output directory: `out/<experiment>-<UTC timestamp>`.
pub fn default_out(name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("out").join(format!("{name}-{}", utc_stamp(secs)))
}

/// `YYYYMMDD-HHMMSS` in UTC (from `profiles::units::format_wall_time`, the
/// one civil-date conversion).
pub fn utc_stamp(secs: u64) -> String {
    let t = profiles::units::format_wall_time(secs.saturating_mul(1_000_000_000));
    // YYYY-MM-DDTHH:MM:SS.fffffffffZ -> YYYYMMDD-HHMMSS
    t.get(..19)
        .unwrap_or(&t)
        .replace(['-', ':'], "")
        .replace('T', "-")
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
        name: "drop_gbps_wire",
        label: "drop rate on the wire (frame, FCS, preamble, gap)",
        unit: "Gbit/s",
        capacity: true,
    },
    Metric {
        name: "dropped_frames",
        label: "frames the program dropped over the run (its drop counter)",
        unit: "frames",
        capacity: false,
    },
    Metric {
        name: "passed_frames",
        label: "frames the program passed over the run (its pass counter)",
        unit: "frames",
        capacity: false,
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
        name: "offered_gbps_wire",
        label: "offered rate on the wire (gen tx; frame, FCS, preamble, gap)",
        unit: "Gbit/s",
        capacity: false,
    },
    Metric {
        name: "refused_pps",
        label: "frames gen handed over that the kernel refused (the receiving ring full)",
        unit: "packets/s",
        capacity: false,
    },
    Metric {
        name: "gen0_offered_pps",
        label: "offered rate of generator host 0 (gen[0] tx, confirmed by its kernel)",
        unit: "packets/s",
        capacity: false,
    },
    Metric {
        name: "gen0_start_error_ms",
        label: "start error of generator host 0: its first frame at the monitor less the common start",
        unit: "ms",
        capacity: false,
    },
    Metric {
        name: "gen1_offered_pps",
        label: "offered rate of generator host 1 (gen[1] tx, confirmed by its kernel)",
        unit: "packets/s",
        capacity: false,
    },
    Metric {
        name: "gen1_start_error_ms",
        label: "start error of generator host 1: its first frame at the monitor less the common start",
        unit: "ms",
        capacity: false,
    },
    Metric {
        name: "gen2_offered_pps",
        label: "offered rate of generator host 2 (gen[2] tx, confirmed by its kernel)",
        unit: "packets/s",
        capacity: false,
    },
    Metric {
        name: "gen2_start_error_ms",
        label: "start error of generator host 2: its first frame at the monitor less the common start",
        unit: "ms",
        capacity: false,
    },
    Metric {
        name: "gen3_offered_pps",
        label: "offered rate of generator host 3 (gen[3] tx, confirmed by its kernel)",
        unit: "packets/s",
        capacity: false,
    },
    Metric {
        name: "gen3_start_error_ms",
        label: "start error of generator host 3: its first frame at the monitor less the common start",
        unit: "ms",
        capacity: false,
    },
    Metric {
        name: "gen0_answered_pps",
        label: "answers received by generator host 0 (gen[0] rx)",
        unit: "answers/s",
        capacity: false,
    },
    Metric {
        name: "gen1_answered_pps",
        label: "answers received by generator host 1 (gen[1] rx)",
        unit: "answers/s",
        capacity: false,
    },
    Metric {
        name: "gen2_answered_pps",
        label: "answers received by generator host 2 (gen[2] rx)",
        unit: "answers/s",
        capacity: false,
    },
    Metric {
        name: "gen3_answered_pps",
        label: "answers received by generator host 3 (gen[3] rx)",
        unit: "answers/s",
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
        name: "ndr_pps",
        label: "no-drop rate (highest rate without loss)",
        unit: "packets/s",
        capacity: true,
    },
    Metric {
        name: "pdr_pps",
        label: "partial-drop rate (highest rate within the loss tolerance)",
        unit: "packets/s",
        capacity: true,
    },
    Metric {
        name: "ndr_trials",
        label: "trials of the rate search",
        unit: "trials",
        capacity: false,
    },
    Metric {
        name: "ndr_confirmed",
        label: "rate confirmed by a full-length trial (1 = yes)",
        unit: "0/1",
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
    v.push(("offered_gbps_wire", f.tx_mbps_wire / 1e3));
    if f.duration_s > 0.0 {
        v.push(("refused_pps", f.tx_dropped as f64 / f.duration_s));
    }
}

/// The metric called `name`; an unknown name is an error, never a default.
pub fn metric(name: &str) -> Result<Metric> {
    METRICS
        .iter()
        .copied()
        .find(|m| m.name == name)
        .ok_or_else(|| anyhow!("internal: metric `{name}` is not in METRICS"))
}

/// The metrics a measurement kind produces (first = the figure's metric).
pub fn metrics_of(m: Measure) -> &'static [&'static str] {
    match m {
        Measure::DutRate => &[
            "drop_pps",
            "drop_gbps_wire",
            "dropped_frames",
            "passed_frames",
            "processed_pps",
            "ns_per_packet",
            "offered_pps",
            "offered_gbps_wire",
            "refused_pps",
            "pass_pps",
            "cpu_tenant_ns_per_packet",
            "cpu_host_ns_per_packet",
        ],
        Measure::AnswerRate => &[
            "answered_pps",
            "offered_pps",
            "offered_gbps_wire",
            "refused_pps",
        ],
        Measure::ResponseTime => &["rtt_p50_us", "rtt_p99_us", "lost_percent", "answered_pps"],
        Measure::UpdateRate => &["updates_batch_per_s", "updates_single_per_s"],
        Measure::Ndr => &[
            "ndr_pps",
            "pdr_pps",
            "ndr_trials",
            "ndr_confirmed",
            "rtt_p99_us",
        ],
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
        if let Err(e) = testbed::binaries::locate(t) {
            missing.push(format!("{e}"));
        }
    }
    for p in exp.peers() {
        if let (Some(prog), Some(pkg)) = (p.program(), p.package())
            && let Err(e) = tools::locate_peer(prog, pkg)
        {
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
    let remote = match &opts.testbed {
        Some(f) => Some(RemoteRun::open(exp, f, opts.unpaced_ok)?),
        None => {
            preflight(exp)?;
            None
        }
    };
    tools::install_ctrlc()?;
    if remote.is_none() {
        crate::registry::reap_and_report("lab run");
    }
    let plan = opts.plan(exp);
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
    // run.json: how these results were obtained (written now, and again at the end
    // with the interfaces and every command line).
    let now_secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let _ = tools::take_commands();
    let mut info = crate::provenance::RunInfo {
        argv: std::env::args().collect(),
        started: utc_stamp(now_secs()),
        experiment: crate::provenance::ExperimentInfo {
            name: exp.name.clone(),
            origin: exp.origin.clone(),
            sha256: crate::provenance::sha256(&exp.text).unwrap_or_else(|e| format!("{e:#}")),
        },
        quick: opts.quick,
        repetitions: plan.repetitions,
        machine: crate::provenance::machine(),
        tools: crate::provenance::tools(),
        ..Default::default()
    };
    if let Some(r) = &remote {
        info.clocks = r.clocks.clone();
    }
    crate::provenance::write_run(&opts.out, &info)?;
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
                let point = PointRun::set_up(exp, series, x, &plan, &raw, remote.as_ref())?;
                if info.interfaces.is_empty()
                    && let Some(bed) = &point.bed
                {
                    info.interfaces = crate::provenance::interfaces(&bed.namespaces());
                }
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
                        let trials: String = measured
                            .trials
                            .iter()
                            .enumerate()
                            .map(|(i, t)| t.csv(&key, i + 1))
                            .collect();
                        store.append_ledger(
                            &a.ledger.csv_lines(&key),
                            &format!("{key},{},{}\n", a.limited_by, a.reason.replace(',', ";")),
                            &trials,
                        )?;
                        if a.limited_by != ledger::LimitedBy::Dut {
                            eprintln!("  limited by {}: {}", a.limited_by, a.reason);
                        }
                    }
                    let pts = measured
                        .values
                        .into_iter()
                        .map(|(m, v)| -> Result<Point> {
                            Ok(Point {
                                experiment: exp.name.clone(),
                                series: series.name.clone(),
                                metric: m.to_owned(),
                                x,
                                repetition: rep,
                                value: v,
                                unit: metric(m)?.unit.to_owned(),
                                limited_by,
                            })
                        })
                        .collect::<Result<Vec<Point>>>()?;
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
    info.commands = tools::take_commands();
    info.finished = utc_stamp(now_secs());
    crate::provenance::write_run(&opts.out, &info)?;
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
    /// The NDR search settings (measure = "ndr").
    ndr: Option<NdrSpec>,
    /// `lab run --testbed`: where gen runs (each generator host, its interface
    /// and the testbed file's addresses); no lab, no ledger. Empty: locally.
    remote_gens: Vec<RemoteGen>,
    /// `lab run --testbed` with a monitor: where the start of several generator
    /// hosts is measured.
    remote_mon: Option<std::sync::Arc<crate::remote::RemoteHost>>,
    /// `lab run --testbed`: the hosts (ledger, tstamp, the DUT host's counters).
    remote: Option<crate::remote_measure::Hosts>,
}

/// What one measurement gave: its values, and where its packets went.
struct Measured {
    values: Vec<(&'static str, f64)>,
    /// None where there is no traffic to account for (map updates).
    ledger: Option<Account>,
    /// The trials of an NDR search.
    trials: Vec<Trial>,
}

/// One trial of an NDR search.
struct Trial {
    /// `search` (short) or `confirm` (full length).
    kind: &'static str,
    /// Rate asked of gen.
    rate: f64,
    /// How long it ran (gen's duration), seconds.
    duration_s: f64,
    /// What gen confirmed sent, per second.
    offered_pps: f64,
    /// Frames at the start of the ledger's chains (handed to the kernel).
    sent: u64,
    /// Frames that did not reach the end of their chain.
    lost: u64,
    loss_percent: f64,
    p99_us: Option<f64>,
    passed: bool,
    /// The DUT's part passed (loss and p99 within the bounds, something
    /// sent), whatever the generator offered.
    dut_ok: bool,
    limited_by: ledger::LimitedBy,
    reason: String,
    account: Account,
}

impl Trial {
    /// Its line of trials.csv, after `key` and its number.
    fn csv(&self, key: &str, n: usize) -> String {
        format!(
            "{key},{n},{},{},{:.0},{},{},{:.6},{},{},{},{}\n",
            self.kind,
            fmt_num(self.rate),
            self.offered_pps,
            self.sent,
            self.lost,
            self.loss_percent,
            self.p99_us.map(|p| format!("{p:.3}")).unwrap_or_default(),
            self.passed,
            self.limited_by,
            self.reason.replace(',', ";")
        )
    }
}

/// A measurement's loss ledger and what limited it.
struct Account {
    ledger: ledger::Ledger,
    limited_by: ledger::LimitedBy,
    reason: String,
}

/// What an NDR search found.
struct Search {
    /// The highest rate that passed (the confirmed one, else the best short trial).
    best: Option<f64>,
    /// A full-length trial confirmed it.
    confirmed: bool,
    /// Every trial, in order.
    trials: Vec<Trial>,
}

/// The no-drop (partial-drop) rate search: the top of the range first, then the
/// bottom, then binary search (geometric midpoints; after the first failed trial, once, 98 %
/// of what it delivered, as MLRsearch does) on short trials until the bracket
/// (highest pass .. lowest fail) is within the precision; then a full-length
/// confirmation trial (`run(rate, true)`). A failed confirmation becomes the new
/// lowest fail, and the search goes on below it with full-length trials only (the
/// short ones proved optimistic). A trial the generator alone failed by a little
/// (it offered 90 to 99.5 % of the rate: a hiccup on a busy machine) is repeated
/// once before it counts; a trial the generator alone failed (the DUT lost
/// nothing of what it got) is also a pass at the rate it actually offered. At
/// most `max_trials` trials in all.
fn ndr_search(spec: &NdrSpec, mut run: impl FnMut(f64, bool) -> Result<Trial>) -> Result<Search> {
    let mut trials: Vec<Trial> = Vec::new();
    // (rate, full length) of every pass.
    let mut passes: Vec<(f64, bool)> = Vec::new();
    let mut fail_min: Option<f64> = None;
    let mut floor_failed = false;
    // After a failed confirmation the short trials proved optimistic: only
    // full-length trials from then on.
    let mut full_only = false;
    let mut hint: Option<f64> = None;
    let mut hint_used = false;
    let mut retried: Vec<u64> = Vec::new();
    let pass_below = |passes: &[(f64, bool)], fail_min: Option<f64>, full: bool| {
        passes
            .iter()
            .filter(|(p, f)| (*f || !full) && fail_min.is_none_or(|m| *p < m))
            .map(|(p, _)| *p)
            .reduce(f64::max)
    };
    let mut done = false;
    while !done && (trials.len() as u32) < spec.max_trials {
        let pass_max = pass_below(&passes, fail_min, full_only);
        let lo = pass_max.unwrap_or(spec.low_pps);
        // The guess, kept a precision step below the lowest failure so that
        // passing it can close the bracket.
        let guess = hint
            .take()
            .and_then(|g| fail_min.map(|f| g.min(f * (1.0 - spec.precision))))
            .filter(|g| *g > lo);
        let narrow = |l: f64, h: f64| (h - l) / h <= spec.precision;
        let (rate, full) = match (pass_max, fail_min) {
            _ if guess.is_some() => (guess.unwrap_or(lo).round(), full_only),
            (None, None) => (spec.high_pps, full_only),
            (None, Some(_)) if floor_failed => break,
            (None, Some(_)) => (spec.low_pps, full_only),
            // Found, and already a full-length pass.
            (Some(_), None) if full_only => break,
            (Some(l), Some(h)) if full_only && narrow(l, h) => break,
            (Some(l), None) => (l, true),
            (Some(l), Some(h)) if narrow(l, h) => (l, true),
            (Some(l), Some(h)) => ((l * h).sqrt().round(), full_only),
        };
        let t = run(rate, full)?;
        if !t.passed
            && t.limited_by == ledger::LimitedBy::Generator
            && t.offered_pps >= 0.9 * rate
            && t.loss_percent <= spec.loss_percent
            && !retried.contains(&(rate as u64))
            && (trials.len() as u32 + 1) < spec.max_trials
        {
            retried.push(rate as u64);
            trials.push(t);
            continue;
        }
        // After the first failure, and after a failed full-length trial (which
        // starts the full-length search below it), once: 98 % of what it delivered.
        if !t.passed && full {
            hint_used = false;
        }
        if !t.passed && !hint_used && t.duration_s > 0.0 {
            let delivered = t.sent.saturating_sub(t.lost) as f64 / t.duration_s;
            hint = Some(0.98 * delivered.min(t.offered_pps));
            hint_used = true;
        }
        let passed = t.passed;
        let (dut_ok, offered) = (t.dut_ok, t.offered_pps);
        let generator_short = t.limited_by == ledger::LimitedBy::Generator;
        trials.push(t);
        if passed {
            passes.push((rate, full));
            // A full-length pass at the top of a narrow bracket ends the search.
            if full && fail_min.is_none_or(|h| narrow(rate, h)) {
                done = true;
            }
        } else {
            // The generator alone fell short and the DUT lost nothing of what
            // it got: a pass at the load actually offered, and the generator's
            // ceiling (half a precision step above that load) bounds the search
            // from above. Without this a generator a hair short at its ceiling,
            // as on a busy machine, leaves no pass at all and the point reads 0.
            let gen_ceiling = dut_ok && generator_short && offered > 0.0 && offered < rate;
            let top = if gen_ceiling {
                rate.min(offered * (1.0 + spec.precision / 2.0))
            } else {
                rate
            };
            fail_min = Some(fail_min.map_or(top, |f| f.min(top)));
            if rate <= spec.low_pps {
                floor_failed = true;
            }
            if gen_ceiling {
                passes.push((offered, full));
                if full && fail_min.is_some_and(|h| narrow(offered, h)) {
                    done = true;
                }
            } else if full {
                full_only = true;
            }
        }
    }
    let confirmed = pass_below(&passes, fail_min, true);
    Ok(Search {
        best: confirmed.or_else(|| pass_below(&passes, fail_min, false)),
        confirmed: confirmed.is_some(),
        trials,
    })
}

/// `pps` frames/s in Gbit/s on the wire, over the mean size of the frames the DUT
/// saw in the same window (its byte counter: frames without FCS) plus the FCS,
/// preamble and inter-frame gap (`profiles::units::WIRE_OVERHEAD`); `None` when
/// it saw nothing.
fn wire_gbps(pps: f64, rates: &records::dut::Rates) -> Option<f64> {
    (rates.packets_pps > 0.0).then(|| {
        let bytes = rates.mbps * 1e6 / 8.0 / rates.packets_pps;
        pps * (bytes + profiles::units::WIRE_OVERHEAD as f64) * 8.0 / 1e9
    })
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
    /// Its DUT program's process where it runs in the foreground (on a
    /// testbed host: removed when it stops).
    _dut: Option<Child>,
    /// Where its program runs.
    port: DutPort,
    /// Where its flood's gen runs (a namespace here, or the testbed's second
    /// generator host) and the port it leaves by.
    gen_site: Site,
    gen_iface: String,
    /// The tenant's address and MAC the flood goes to (tenants topology).
    dst: Option<(std::net::Ipv4Addr, [u8; 6])>,
    /// Flood rate (`None`: as fast as it goes).
    rate: Option<crate::experiment::Rate>,
}

/// A DUT program's place: `dut --netns NETNS ... --iface IFACE`, here or on a
/// testbed host over ssh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DutPort {
    /// Where `dut` runs (its namespace, or the host).
    pub site: Site,
    /// Interface.
    pub iface: String,
}

impl DutPort {
    /// dut0 in lab `lab`'s DUT namespace.
    pub fn of_lab(lab: &str) -> DutPort {
        DutPort {
            site: Site::local(testbed::dut_netns(lab)),
            iface: testbed::DUT_IFACE.to_owned(),
        }
    }
    /// The host's second port dut1 (tenants lab).
    pub fn second(lab: &str) -> DutPort {
        DutPort {
            site: Site::local(testbed::dut_netns(lab)),
            iface: testbed::DUT1_IFACE.to_owned(),
        }
    }
    /// Tenant `i`'s ten0 inside its namespace (tenants lab).
    pub fn tenant(lab: &str, i: u8) -> DutPort {
        DutPort {
            site: Site::local(testbed::tenant_netns(lab, i)),
            iface: testbed::TENANT_IFACE.to_owned(),
        }
    }
}

/// gen's destination for the lab's tenant `t` (its address and MAC: the
/// bridge forwards by MAC; on a testbed the file's `[[tenant]]` gives them).
fn tenant_dst(b: &mut records::args::Gen, t: u8) {
    b.dst_ip = Some(testbed::tenant_ip(t));
    b.dst_mac = Some(testbed::tenant_mac(t));
}

/// A DUT program in the foreground (every one on a testbed host) leaves no
/// install output: its log then says where it runs and the command line.
fn note_foreground_install(log: &Path, port: &DutPort, child: Option<&Child>) {
    if let Some(c) = child
        && !log.exists()
    {
        std::fs::write(log, format!("{port}\n{}\n", c.command())).ok();
    }
}

impl std::fmt::Display for DutPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.iface, self.site)
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
        remote: Option<&RemoteRun>,
    ) -> Result<PointRun<'a>> {
        let queues = if exp.parameter == Param::Queues {
            x as u32
        } else {
            series.queues
        };
        let lab = testbed::unique_name("run");
        let tenants = exp.topology == Topo::Tenants;
        // In the tenants lab, rates are measured on the host's second port
        // (no switch, no mirror); answers come back by the switched port.
        let second = tenants && series.measure == Measure::DutRate;
        // A testbed's tenant (`[[tenant]]`, 1-based; `remote_measure::refuse`
        // checked the file has it).
        let remote_tenant = |r: &RemoteRun, t: u8| {
            usize::from(t)
                .checked_sub(1)
                .and_then(|i| r.tenants.get(i))
                .cloned()
                .with_context(|| format!("the testbed file has no tenant {t}"))
        };
        let port = match (remote, tenants, series.at) {
            (Some(r), true, At::Tenant) => {
                let t = remote_tenant(r, series.tenant)?;
                DutPort {
                    iface: t.endpoint.iface.clone(),
                    site: Site::Remote(t),
                }
            }
            (Some(r), _, _) => DutPort {
                site: Site::Remote(r.dut.clone()),
                iface: r.dut.endpoint.iface.clone(),
            },
            (None, true, At::Tenant) => DutPort::tenant(&lab, series.tenant),
            (None, true, At::Host) if second => DutPort::second(&lab),
            _ => DutPort::of_lab(&lab),
        };
        if let Some(q) = remote.and_then(|r| r.queues.as_ref()) {
            q.set(queues)?;
        }
        // On a testbed with tenants the measured traffic comes from the first
        // generator host to tenant `dst_tenant`'s address and MAC (through the
        // DUT host's bridge), the second host being the neighbour's.
        let dst_tenant = match remote {
            Some(r) if tenants => {
                let e = remote_tenant(r, series.dst_tenant)?.endpoint.clone();
                Some((e.ip, e.mac))
            }
            _ => None,
        };
        let remote_gens: Vec<RemoteGen> = remote
            .map(|r| {
                r.hosts
                    .gens
                    .iter()
                    .map(|g| {
                        let mut h = RemoteGen::on(g, &r.dut);
                        if let Some((ip, mac)) = dst_tenant {
                            (h.dst_ip, h.dst_mac) = (ip, mac);
                        }
                        h
                    })
                    .collect()
            })
            .unwrap_or_default();
        let remote_mon = remote.and_then(|r| r.mon.clone());
        let gen_port = (
            testbed::gen_netns(&lab),
            if second {
                testbed::GEN1_IFACE
            } else {
                testbed::GEN_IFACE
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
            ndr: plan.ndr.clone(),
            remote_gens,
            remote_mon,
            remote: remote.map(|r| r.hosts.clone()),
        };
        if series.measure == Measure::UpdateRate {
            return Ok(pr);
        }
        if remote.is_none() {
            let mut bed = Self::lab_up(exp, &lab, queues)?;
            // An IPv6 profile gets a dual-stack lab: the DUT's IPv6 address and the
            // neighbour entries gen looks up (as `lab up --ipv6`).
            if profiles::Profile::load(&series.profile).is_ok_and(|p| p.ipv6.is_some()) {
                bed.enable_ipv6()
                    .context("lab up: dual stack for an IPv6 profile")?;
            }
            pr.bed = Some(bed);
        }
        if let Some(prog) = &series.program {
            let checksums = if exp.parameter == Param::Checksums {
                Some(x as u32)
            } else {
                series.checksums
            };
            // The tenant guard on a testbed: the file's address of the tenant
            // (the experiment's default is the lab's).
            let lab_guard = format!("{}/32", testbed::tenant_ip(series.tenant));
            let only_dst = match remote {
                Some(r) if tenants && series.only_dst.as_deref() == Some(lab_guard.as_str()) => {
                    remote_tenant(r, series.tenant)?
                        .endpoint
                        .ip
                        .map(|ip| format!("{ip}/32"))
                }
                _ => series.only_dst.clone(),
            };
            let opts = InstallOptions {
                program: prog,
                mode: &series.mode,
                profile: (prog == "dns-cache").then_some(series.profile.as_str()),
                checksums,
                only_dst: only_dst.as_deref(),
                allow: &series.allow,
            };
            let log = pr.file("dut-install", "txt");
            pr.dut_fg = install(&pr.port, &opts, &log)?;
            note_foreground_install(&log, &pr.port, pr.dut_fg.as_ref());
        }
        let nb_checksums = if exp.parameter == Param::NeighbourChecksums {
            Some(x as u32)
        } else {
            series.neighbour_checksums
        };
        if let Some(n) = nb_checksums {
            let (bed, port, only_dst, gen_site, gen_iface, dst) = match remote {
                // On a testbed: tenant 2, flooded from the second generator
                // host into the DUT host's second port; its program in its own
                // driver or in the host's, guarded to its address.
                Some(r) if tenants => {
                    let t = remote_tenant(r, 2)?;
                    let g = r.gens.get(1).context(
                        "the testbed file has no second [[gen]] for the neighbour's flood",
                    )?;
                    let (port, only_dst) = match series.neighbour_at {
                        At::Tenant => (
                            DutPort {
                                iface: t.endpoint.iface.clone(),
                                site: Site::Remote(t.clone()),
                            },
                            None,
                        ),
                        At::Host => (
                            DutPort {
                                site: Site::Remote(r.dut.clone()),
                                iface: r
                                    .dut_second_iface
                                    .clone()
                                    .unwrap_or_else(|| r.dut.endpoint.iface.clone()),
                            },
                            t.endpoint.ip.map(|ip| format!("{ip}/32")),
                        ),
                    };
                    let dst = t.endpoint.ip.zip(t.endpoint.mac);
                    let site = Site::Remote(g.clone());
                    (None, port, only_dst, site, g.endpoint.iface.clone(), dst)
                }
                Some(_) => bail!("lab run --testbed: a busy neighbour needs the tenants topology"),
                // Tenant 2, flooded through the host's second port; its
                // program in its own driver or in the host's, guarded.
                None if tenants => {
                    let (port, only_dst) = match series.neighbour_at {
                        At::Tenant => (DutPort::tenant(&lab, 2), None),
                        At::Host => (
                            DutPort::second(&lab),
                            Some(format!("{}/32", testbed::tenant_ip(2))),
                        ),
                    };
                    let site = Site::local(testbed::gen_netns(&lab));
                    let dst = Some((testbed::tenant_ip(2), testbed::tenant_mac(2)));
                    (None, port, only_dst, site, testbed::GEN1_IFACE.into(), dst)
                }
                None => {
                    // A stand-in: its own generator and DUT port on the same
                    // machine, its program in its own driver.
                    let nb = Testbed::up(&UpOptions {
                        name: testbed::unique_name("nb"),
                        topology: Topology::Direct,
                        queues: 1,
                    })
                    .context("neighbour lab up")?;
                    let port = DutPort::of_lab(nb.name());
                    let site = Site::local(testbed::gen_netns(nb.name()));
                    (Some(nb), port, None, site, testbed::GEN_IFACE.into(), None)
                }
            };
            let opts = InstallOptions {
                program: "checksum",
                mode: "native",
                profile: None,
                checksums: Some(n),
                only_dst: only_dst.as_deref(),
                allow: &[],
            };
            let log = pr.file("neighbour-dut-install", "txt");
            let dut = install(&port, &opts, &log)?;
            note_foreground_install(&log, &port, dut.as_ref());
            let nb = Neighbour {
                _bed: bed,
                _dut: dut,
                port,
                gen_site,
                gen_iface,
                dst,
                rate: series.neighbour_rate,
            };
            pr.neighbour = Some(nb);
        }
        Ok(pr)
    }

    /// This point's lab.
    fn lab_up(exp: &Experiment, lab: &str, queues: u32) -> Result<Testbed> {
        let topology = match exp.topology {
            Topo::Direct => Topology::Direct,
            Topo::Switched => Topology::Switched,
            Topo::Tenants => Topology::Tenants,
        };
        Testbed::up(&UpOptions {
            name: lab.to_owned(),
            topology,
            queues,
        })
        .context("lab up")
    }

    /// Starts gen for the measurement (here, or on the testbed's generator host).
    fn spawn_gen(&self, duration: Duration, rx: bool) -> Result<Child> {
        match self.remote_gens.first() {
            Some(r) => r.site.spawn(
                "gen",
                &self.remote_gen_args(r, self.rate(), duration, rx)?.argv(),
            ),
            None => Child::spawn(self.gen_cmd(duration, rx)?),
        }
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

    /// gen's `--frame-size`: this point's x in a frame-size sweep.
    fn frame_size(&self) -> Option<usize> {
        (self.parameter == Param::FrameSize).then_some(self.x as usize)
    }

    fn rate(&self) -> Option<crate::experiment::Rate> {
        if self.parameter == Param::Rate {
            Some(crate::experiment::Rate::Pps(self.x))
        } else {
            self.series.rate
        }
    }

    fn gen_cmd(&self, duration: Duration, rx: bool) -> Result<Command> {
        self.gen_cmd_at(self.rate(), duration, rx)
    }

    fn gen_cmd_at(
        &self,
        rate: Option<crate::experiment::Rate>,
        duration: Duration,
        rx: bool,
    ) -> Result<Command> {
        let b = self.gen_args(rate, duration, rx)?;
        let mut c = Command::new(testbed::binaries::locate("gen")?);
        c.args(b.argv());
        Ok(c)
    }

    fn gen_args(
        &self,
        rate: Option<crate::experiment::Rate>,
        duration: Duration,
        rx: bool,
    ) -> Result<records::args::Gen> {
        if let Some(r) = self.remote_gens.first() {
            return self.remote_gen_args(r, rate, duration, rx);
        }
        self.lab()?;
        let mut b = records::args::Gen {
            netns: Some(self.gen_port.0.clone()),
            iface: self.gen_port.1.to_owned(),
            profile: self.series.profile.clone(),
            engine: Some(self.series.engine),
            rate,
            duration: Some(duration),
            queues: Some(self.queues),
            frame_size: self.frame_size(),
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
            b.dst_mac = Some(testbed::DUT_MAC);
        }
        Ok(b)
    }

    /// gen's command line on generator host `r`.
    fn remote_gen_args(
        &self,
        r: &RemoteGen,
        rate: Option<crate::experiment::Rate>,
        duration: Duration,
        rx: bool,
    ) -> Result<records::args::Gen> {
        let mut b = records::args::Gen {
            profile: self.series.profile.clone(),
            engine: Some(self.series.engine),
            rate,
            duration: Some(duration),
            queues: Some(self.queues),
            frame_size: self.frame_size(),
            no_rx: !rx,
            json: true,
            ..records::args::Gen::default()
        };
        r.place(&mut b);
        Ok(b)
    }

    /// Several generator hosts: [`gens::spawn_together`] with this point's hosts.
    fn spawn_remote_gens(&self, b: &records::args::Gen) -> Result<MultiGen> {
        gens::spawn_together(&self.remote_gens, self.remote_mon.as_ref(), b, self.queues)
    }

    /// [`gens::finish_together`], each host's output written to the raw
    /// directory with `rep`.
    fn finish_remote_gens(
        &self,
        mg: MultiGen,
        rep: Option<u32>,
        stop: bool,
        v: &mut Vec<(&'static str, f64)>,
    ) -> Result<GenFinal> {
        gens::finish_together(&self.remote_gens, mg, stop, v, &|i, out| {
            if let Some(rep) = rep {
                std::fs::write(
                    self.rep_file(rep, &format!("gen{i}")),
                    format!("{}{}", out.stdout(), out.stderr),
                )
                .ok();
            }
        })
    }

    /// gen on the generator host(s) for `b` (see [`Self::gen_args`]), to the
    /// end of its run: its final record (several hosts: their total, and the
    /// per-host values pushed onto `v`) and, with one gen, its output.
    fn run_gens(
        &self,
        b: &records::args::Gen,
        rep: Option<u32>,
        v: &mut Vec<(&'static str, f64)>,
    ) -> Result<GenFinal> {
        if self.remote_gens.len() > 1 {
            let mg = self.spawn_remote_gens(b)?;
            return self.finish_remote_gens(mg, rep, false, v);
        }
        let out = match self.remote_gens.first() {
            Some(r) => r.site.run("gen", &b.argv()),
            None => {
                let mut cmd = Command::new(testbed::binaries::locate("gen")?);
                cmd.args(b.argv());
                tools::run(cmd)
            }
        }?;
        if let Some(rep) = rep {
            std::fs::write(self.rep_file(rep, "gen"), out.stdout()).ok();
        }
        out.check()?;
        out.final_as("gen final")
    }

    fn measure(&self, rep: u32) -> Result<Measured> {
        match self.series.measure {
            Measure::DutRate => self.dut_rate(rep),
            Measure::AnswerRate => self.answer_rate(rep),
            Measure::ResponseTime => self.response_time(rep),
            Measure::UpdateRate => Ok(Measured {
                values: self.update_rate(rep)?,
                ledger: None,
                trials: Vec::new(),
            }),
            Measure::Ndr => self.ndr(),
        }
    }

    /// The DUT program answers what it gets (an answer chain to account for).
    fn answers(&self) -> bool {
        matches!(
            self.series.program.as_deref(),
            Some("dns-ping" | "dns-cache")
        )
    }

    /// One NDR trial: gen paced at `rate` for `duration`, then the ledger.
    fn trial(
        &self,
        rate: f64,
        duration: Duration,
        spec: &NdrSpec,
        kind: &'static str,
    ) -> Result<Trial> {
        let before = self.counters()?;
        let ts = match spec.p99_us {
            Some(_) => self.start_tstamp(&[])?,
            None => None,
        };
        // A trial is a number of frames at a rate (RFC 2544): gen catches up on a
        // late start instead of cutting the run short at a deadline.
        let frames = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
        let mut b = self.gen_args(
            Some(crate::experiment::Rate::Pps(rate)),
            duration,
            self.answers(),
        )?;
        b.duration = None;
        b.count = Some(frames);
        let g = self.run_gens(&b, None, &mut Vec::new());
        let ts_final: Option<TstampFinal> = match ts {
            None => None,
            Some(t) => {
                thread::sleep(Duration::from_millis(300));
                Some(t.stop(Duration::from_secs(5))?.final_as("tstamp final")?)
            }
        };
        let g = g?;
        let account = self.account(&before, Some(&g), ts_final.as_ref().map(|f| f.frames))?;
        let (sent, lost) = account.ledger.end_to_end();
        let loss_percent = if sent > 0 {
            100.0 * lost as f64 / sent as f64
        } else {
            100.0
        };
        let p99_us = ts_final
            .as_ref()
            .and_then(|f| f.rtt_ns.p99)
            .map(|p| p as f64 / 1e3);
        let offered_ok = g.tx_pps >= ledger::OFFERED_MIN_RATIO * rate;
        let loss_ok = loss_percent <= spec.loss_percent;
        let p99_ok = match (spec.p99_us, p99_us) {
            (None, _) => true,
            (Some(b), Some(p)) => p <= b,
            (Some(_), None) => false,
        };
        let passed = offered_ok && loss_ok && p99_ok && sent > 0;
        let (mut limited_by, mut reason) = (account.limited_by, account.reason.clone());
        if !passed && offered_ok {
            if !loss_ok && matches!(limited_by, ledger::LimitedBy::None) {
                // Under the ledger's tolerance, over the search's.
                if let Some((st, n)) = account.ledger.first_any_loss() {
                    limited_by = ledger::limited_by_place(st.place);
                    reason = format!("{n} lost at {}", st.name);
                }
            } else if loss_ok && !p99_ok {
                limited_by = ledger::LimitedBy::Dut;
                reason = match p99_us {
                    Some(p) => format!(
                        "p99 response time {p:.1} us over the {:.1} us bound",
                        spec.p99_us.unwrap_or(0.0)
                    ),
                    None => "no response time measured".into(),
                };
            }
        }
        Ok(Trial {
            kind,
            rate,
            duration_s: g.duration_s,
            offered_pps: g.tx_pps,
            sent,
            lost,
            loss_percent,
            p99_us,
            passed,
            dut_ok: loss_ok && p99_ok && sent > 0,
            limited_by,
            reason,
            account,
        })
    }

    /// The no-drop (partial-drop) rate of this point ([`ndr_search`] over real
    /// trials).
    fn ndr(&self) -> Result<Measured> {
        let spec = self
            .ndr
            .clone()
            .context("measure = \"ndr\" without an [ndr] table")?;
        let Search {
            best,
            confirmed,
            trials,
        } = ndr_search(&spec, |rate, confirm| {
            if tools::stop_requested() {
                bail!("interrupted");
            }
            let (d, kind) = if confirm {
                (self.duration, "confirm")
            } else {
                (spec.trial, "search")
            };
            let t = self.trial(rate, d, &spec, kind)?;
            eprintln!(
                "  {kind} {:.0} packets/s: offered {:.0}, lost {:.4} %{} -> {}",
                rate,
                t.offered_pps,
                t.loss_percent,
                t.p99_us
                    .map(|p| format!(", p99 {p:.1} us"))
                    .unwrap_or_default(),
                if t.passed {
                    "pass".to_owned()
                } else {
                    format!("fail ({}: {})", t.limited_by, t.reason)
                }
            );
            Ok(t)
        })?;
        // What bounded the search from above: the lowest failed trial's limit.
        let bounding = trials
            .iter()
            .filter(|t| !t.passed && best.is_none_or(|b| t.rate > b))
            .min_by(|a, b| a.rate.total_cmp(&b.rate));
        let (limited_by, reason) = match (bounding, best) {
            (None, _) => (
                ledger::LimitedBy::None,
                format!(
                    "every trial passed up to the top of the search ({:.0} packets/s): the rate is at least that",
                    spec.high_pps
                ),
            ),
            (Some(t), Some(_)) => (
                t.limited_by,
                format!("above it, at {:.0} packets/s: {}", t.rate, t.reason),
            ),
            (Some(t), None) => (
                t.limited_by,
                format!("even {:.0} packets/s failed: {}", t.rate, t.reason),
            ),
        };
        let last = trials.last().context("the NDR search ran no trial")?;
        let mut values = vec![
            (spec.metric(), best.unwrap_or(0.0)),
            ("ndr_trials", trials.len() as f64),
            ("ndr_confirmed", if confirmed { 1.0 } else { 0.0 }),
        ];
        if let Some(p) = trials
            .iter()
            .rev()
            .find(|t| t.passed)
            .and_then(|t| t.p99_us)
        {
            values.push(("rtt_p99_us", p));
        }
        let account = Account {
            ledger: last.account.ledger.clone(),
            limited_by,
            reason: if confirmed {
                reason
            } else {
                format!("not confirmed by a full-length trial; {reason}")
            },
        };
        Ok(Measured {
            values,
            ledger: Some(account),
            trials,
        })
    }

    /// Every interface counter of the lab and the DUT program's counters, read
    /// before and after a measurement for its ledger.
    fn counters(&self) -> Result<(ledger::Snapshot, Option<ledger::DutCounts>)> {
        let snap = match (&self.remote, &self.bed) {
            (Some(r), _) => r.snapshot()?,
            (None, Some(bed)) => ledger::Snapshot::take(&bed.namespaces())?,
            (None, None) => bail!("no lab"),
        };
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
        if let Some(r) = &self.remote {
            return Ok(r.path());
        }
        let lab = self.lab()?;
        let (g, s, d, m) = (
            testbed::gen_netns(lab),
            testbed::sw_netns(lab),
            testbed::dut_netns(lab),
            testbed::mon_netns(lab),
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
                request: vec![hop(&g, gen_if, &d, testbed::DUT_IFACE, Place::Dut)],
                answer: vec![hop(&d, testbed::DUT_IFACE, &g, gen_if, Place::Generator)],
                mirror: None,
            },
            Some(Topology::Tenants) if gen_if == testbed::GEN1_IFACE => ledger::Path {
                request: vec![hop(&g, gen_if, &d, testbed::DUT1_IFACE, Place::Dut)],
                answer: vec![],
                mirror: None,
            },
            _ => {
                let mut request = vec![
                    hop(&g, gen_if, &s, testbed::SW_GEN_IFACE, Place::Path),
                    hop(
                        &s,
                        testbed::SW_DUT_IFACE,
                        &d,
                        testbed::DUT_IFACE,
                        Place::Dut,
                    ),
                ];
                let mut answer = vec![
                    hop(
                        &d,
                        testbed::DUT_IFACE,
                        &s,
                        testbed::SW_DUT_IFACE,
                        Place::Path,
                    ),
                    hop(&s, testbed::SW_GEN_IFACE, &g, gen_if, Place::Generator),
                ];
                if let Some(t) = self.dst_tenant {
                    // Through the host's bridge to the tenant's virtual NIC.
                    let tn = testbed::tenant_netns(lab, t);
                    let vif = testbed::tenant_vif(t);
                    request.push(hop(&d, &vif, &tn, testbed::TENANT_IFACE, Place::Dut));
                    answer.clear();
                }
                let mirror = Some((
                    vec![
                        Port::new(&s, testbed::SW_GEN_IFACE),
                        Port::new(&s, testbed::SW_DUT_IFACE),
                    ],
                    hop(
                        &s,
                        testbed::SW_MON_IFACE,
                        &m,
                        testbed::MON_IFACE,
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
        let delta = after.0.since(&before.0);
        let mut l = ledger::build(
            &path,
            &delta,
            &ledger::Tools {
                generator,
                dut,
                captured,
                answers: self.answers(),
            },
        );
        if let Some(r) = &self.remote {
            r.finish_ledger(&mut l, &delta, captured);
        }
        let (by, why) = ledger::classify(&l, generator);
        Ok(Account {
            ledger: l,
            limited_by: by,
            reason: why,
        })
    }

    /// DUT counters over a window of `duration` inside the source's run.
    fn dut_rate(&self, rep: u32) -> Result<Measured> {
        // Over ssh the counters are the hosts' (remote_measure).
        let remote = self.remote.is_some();
        let multi = self.remote_gens.len() > 1;
        if !remote {
            self.lab()?;
        }
        let before = Some(self.counters()?);
        let verdicts_before = self.verdicts()?;
        // The source is stopped once the window is over: a long margin
        // costs nothing and covers a slow start on a loaded machine.
        let margin = Duration::from_secs(60);
        let mut multigen = None;
        let source = match self.series.source {
            Source::Gen if multi => {
                let b = self.gen_args(self.rate(), self.duration + margin, false)?;
                multigen = Some(self.spawn_remote_gens(&b)?);
                None
            }
            Source::Gen => Some(self.spawn_gen(self.duration + margin, false)?),
            Source::Trafgen => {
                let name = format!("trafgen-{}.cfg", slug(&self.series.profile));
                let cfg = self.raw.join(&name);
                // On a testbed: the generator host's and the DUT's addresses
                // (the MACs read over ssh where the file gives none), the
                // configuration put on the generator host.
                let remote = match (self.remote_gens.first(), &self.remote) {
                    (Some(r), Some(hosts)) => {
                        let Site::Remote(g) = &r.site else {
                            bail!("internal: a testbed generator host is not remote");
                        };
                        let addrs = FrameAddrs {
                            src_mac: Some(match r.mac {
                                Some(m) => m,
                                None => g.mac()?,
                            }),
                            dst_mac: Some(match r.dst_mac {
                                Some(m) => m,
                                None => hosts.dut.mac()?,
                            }),
                            src_ip: r.src_ip,
                            dst_ip: r.dst_ip,
                        };
                        Some((g, r.iface.clone(), addrs))
                    }
                    _ => None,
                };
                let addrs = remote.as_ref().map(|r| r.2).unwrap_or_default();
                let text = trafgen_config(&self.series.profile, &addrs)?;
                store::write_atomic(&cfg, text.as_bytes())?;
                let mut t = records::args::Trafgen {
                    dev: self.gen_port.1.to_owned(),
                    conf: cfg,
                    cpus: Some(self.queues),
                    num: None,
                    no_sock_mem: true,
                    notouch_irq: true,
                };
                match remote {
                    Some((g, iface, _)) => {
                        let conf = crate::remote::tmp_file(&name);
                        g.put_file(&conf, text.as_bytes())?;
                        t.dev = iface;
                        t.conf = conf.clone().into();
                        let mut argv = vec!["trafgen".to_owned()];
                        argv.extend(t.argv());
                        Some(g.spawn_peer(&argv, &[&conf])?)
                    }
                    None => {
                        let mut c = Command::new("ip");
                        c.args(t.netns_exec(&self.gen_port.0));
                        Some(Child::spawn(c)?)
                    }
                }
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
            // A remote DUT's process is on its host (its local child is ssh):
            // its pid is the owner `dut status` names there (the DUT host, or
            // a tenant's host), its CPU time is read over that host's
            // connection.
            let pid = match &self.port.site {
                Site::Remote(_) if self.series.mode == "userspace" => {
                    dut_status(&self.port)?.owner.pid
                }
                Site::Remote(_) => None,
                Site::Local { .. } => self.dut_fg.as_ref().and_then(Child::id),
            };
            let cpu_ns = |pid: u32| match &self.port.site {
                Site::Remote(h) => h.cpu_time_ns(pid),
                Site::Local { .. } => tools::cpu_time_ns(pid),
            };
            let c0 = pid.and_then(cpu_ns);
            let softirq = || match &self.remote {
                Some(r) => r.dut_softirq_ns(),
                None => tools::machine_softirq_ns(),
            };
            let m0 = softirq();
            let t0 = Instant::now();
            let w = dut_status_window(&self.port, self.duration)?;
            let secs = t0.elapsed().as_secs_f64();
            let user = c0.zip(pid.and_then(cpu_ns)).map(|(a, b)| (b - a, secs));
            let cpu = m0.zip(softirq()).map(|(m0, m1)| CpuWindow {
                softirq_ns: m1 - m0,
                secs,
            });
            Ok((w, user, cpu))
        })();
        let mut gen_values = Vec::new();
        let mut total = None;
        let out = match (source, multigen) {
            (Some(source), _) => {
                let out = source.stop(Duration::from_secs(5))?;
                std::fs::write(
                    self.rep_file(rep, source_name(self.series.source)),
                    format!("{}{}", out.stdout(), out.stderr),
                )
                .ok();
                Some(out)
            }
            (None, Some(mg)) => {
                let r = self.finish_remote_gens(mg, Some(rep), true, &mut gen_values);
                window.as_ref().map_err(|e| anyhow!("{e:#}"))?;
                total = Some(r?);
                None
            }
            (None, None) => bail!("internal: no source"),
        };
        let (w, user, cpu) = window?;
        if let Ok(line) = serde_json::to_string(&w) {
            std::fs::write(self.rep_file(rep, "dut-status-window"), format!("{line}\n")).ok();
        }
        let rates = w.rates.with_context(|| {
            format!(
                "dut status --window: no rates for {} (a program without counters)",
                w.program
            )
        })?;
        let mut v = vec![
            ("drop_pps", rates.drop_pps),
            ("processed_pps", rates.packets_pps),
        ];
        if let Some(g) = wire_gbps(rates.drop_pps, &rates) {
            v.push(("drop_gbps_wire", g));
        }
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
        let f: Option<GenFinal> = match &out {
            Some(out) if self.series.source == Source::Gen => {
                let f: GenFinal = out.final_as("gen final")?;
                push_offered(&f, &mut v);
                Some(f)
            }
            // Several generator hosts: their total.
            None => {
                if let Some(t) = &total {
                    push_offered(t, &mut v);
                }
                total
            }
            _ => None,
        };
        v.extend(gen_values);
        let account = match &before {
            Some(before) => Some(self.account(before, f.as_ref(), None)?),
            None => None,
        };
        // After the ledger's settling time: the program's verdicts over the run.
        if let Some(b) = verdicts_before
            && let Some(a) = self.verdicts()?
        {
            v.push(("dropped_frames", a.drop.saturating_sub(b.drop) as f64));
            v.push(("passed_frames", a.pass.saturating_sub(b.pass) as f64));
        }
        Ok(Measured {
            values: v,
            ledger: account,
            trials: Vec::new(),
        })
    }

    /// The DUT program's counters, for a program whose verdicts are the result
    /// (syn-filter: SYNs dropped vs passed); `None` for the others.
    fn verdicts(&self) -> Result<Option<records::dut::Counters>> {
        if self.series.program.as_deref() != Some("syn-filter") {
            return Ok(None);
        }
        let st = dut_status(&self.port)?;
        dut_counts(&st)?;
        Ok(st.counters)
    }

    fn answer_rate(&self, rep: u32) -> Result<Measured> {
        let before = self.counters()?;
        match self.series.source {
            Source::Gen => {
                let mut per_host = Vec::new();
                let b = self.gen_args(self.rate(), self.duration, true)?;
                let f = self.run_gens(&b, Some(rep), &mut per_host)?;
                let mut v = vec![("answered_pps", f.rx_pps)];
                push_offered(&f, &mut v);
                v.extend(per_host);
                let account = self.account(&before, Some(&f), None)?;
                Ok(Measured {
                    values: v,
                    ledger: Some(account),
                    trials: Vec::new(),
                })
            }
            Source::Dnsperf => {
                let name = format!("dnsperf-{}.txt", slug(&self.series.profile));
                let qf = self.raw.join(&name);
                let queries = dnsperf_queries(&self.series.profile)?;
                store::write_atomic(&qf, queries.as_bytes())?;
                // On a testbed: on the generator host, the query list put there.
                let remote = match (self.remote_gens.first(), &self.remote) {
                    (Some(r), Some(_)) => match &r.site {
                        Site::Remote(g) => Some((g, r.dst_ip)),
                        Site::Local { .. } => None,
                    },
                    _ => None,
                };
                let out = match remote {
                    Some((g, server)) => {
                        let server = server.context(
                            "dnsperf on a testbed needs the DUT's address: give [dut] ip in the testbed file",
                        )?;
                        let path = crate::remote::tmp_file(&name);
                        g.put_file(&path, queries.as_bytes())?;
                        let mut argv = vec!["dnsperf".to_owned()];
                        argv.extend(dnsperf_args(server, &path, self.duration));
                        g.spawn_peer(&argv, &[&path])?.wait()?
                    }
                    None => {
                        let lab = self.lab()?.to_owned();
                        let mut c = Command::new("ip");
                        c.args(["netns", "exec", &testbed::gen_netns(&lab), "dnsperf"]);
                        c.args(dnsperf_args(
                            testbed::DUT_IP,
                            &qf.display().to_string(),
                            self.duration,
                        ));
                        tools::run(c)?
                    }
                };
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
                    trials: Vec::new(),
                })
            }
            Source::Trafgen => bail!("trafgen cannot drive answer-rate"),
        }
    }

    fn response_time(&self, rep: u32) -> Result<Measured> {
        // A busy neighbour: flood its checksum program for the whole
        // measurement, starting once its DUT sees traffic.
        let flood = match &self.neighbour {
            None => None,
            Some(nb) => {
                // Here, or on the testbed's second generator host.
                let b = records::args::Gen {
                    netns: nb.gen_site.netns(),
                    iface: nb.gen_iface.clone(),
                    profile: "min-multi-flow".into(),
                    rate: nb.rate,
                    duration: Some(self.duration + Duration::from_secs(60)),
                    no_rx: true,
                    dst_ip: nb.dst.map(|d| d.0),
                    dst_mac: nb.dst.map(|d| d.1),
                    json: true,
                    ..records::args::Gen::default()
                };
                let child = nb.gen_site.spawn("gen", &b.argv())?;
                wait_for_traffic(&nb.port)?;
                Some(child)
            }
        };
        let base = self.rep_file(rep, "tstamp");
        let before = self.counters()?;
        let hdr = base.with_extension("hdr");
        // Over ssh tstamp writes its HDR log on the monitor host; fetched below.
        let remote_hdr = crate::remote::tmp_file(&format!("r{rep}.hdr"));
        let mut ts = self.start_tstamp(&[(
            "--hdrh",
            if self.remote.is_some() {
                remote_hdr.clone().into()
            } else {
                hdr.clone()
            },
        )])?;
        let mut per_host = Vec::new();
        let gen_final = self
            .gen_args(self.rate(), self.duration, true)
            .and_then(|b| self.run_gens(&b, Some(rep), &mut per_host));
        // Late answers still count.
        thread::sleep(Duration::from_millis(300));
        let ts_out = ts.take().context("tstamp")?.stop(Duration::from_secs(5))?;
        std::fs::write(&base, ts_out.stdout()).ok();
        if let Some(r) = &self.remote {
            r.fetch_from_monitor(&remote_hdr, &hdr)?;
        }
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
        let g = gen_final?;
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
        v.push(("answered_pps", g.rx_pps));
        v.extend(per_host);
        let account = self.account(&before, Some(&g), Some(f.frames))?;
        Ok(Measured {
            values: v,
            ledger: Some(account),
            trials: Vec::new(),
        })
    }

    /// Starts tstamp on this point's mirror port: mon0 of its lab, or the
    /// testbed's monitor host (whose files are written there).
    fn start_tstamp(&self, files: &[(&str, PathBuf)]) -> Result<Option<Child>> {
        match &self.remote {
            Some(r) => {
                let (site, iface) = r.monitor()?;
                start_tstamp_at(&site, &iface, files)
            }
            None => start_tstamp(self.lab()?, files),
        }
    }

    fn update_rate(&self, rep: u32) -> Result<Vec<(&'static str, f64)>> {
        let batch = if self.parameter == Param::Batch {
            if self.x < 1.0 || self.x.fract() != 0.0 {
                bail!(
                    "batch size {} is not a whole number of at least 1",
                    fmt_num(self.x)
                );
            }
            self.x as usize
        } else {
            256
        };
        // On this machine (no lab: the map is the process's own), or on the
        // testbed's DUT host, in its namespace if the file gives one.
        let site = &self.port.site;
        let b = records::args::Dut {
            netns: site.netns().filter(|_| site.is_remote()),
            json: true,
            cmd: DutCmd::UpdateBench {
                profile: self.series.profile.clone(),
                batch: Some(batch),
                duration: Some(self.duration),
            },
        };
        let out = site.run("dut", &b.argv())?;
        std::fs::write(self.rep_file(rep, "dut-update-bench"), out.stdout()).ok();
        out.check()?;
        let mut v = Vec::new();
        for r in
            out.all_of::<records::dut::UpdateBench>(records::Kind::Final, "dut update-bench")?
        {
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
    /// syn-filter's allow-list (`--allow`, one per prefix).
    pub allow: &'a [String],
}

/// `dut --netns NETNS install ... --iface IFACE`. For `userspace`, the DUT
/// runs in the foreground: the returned child must live while measuring.
pub fn install(port: &DutPort, o: &InstallOptions<'_>, log: &Path) -> Result<Option<Child>> {
    let mode: records::dut::Mode = o
        .mode
        .parse()
        .map_err(|e: String| anyhow!("dut install: {e}"))?;
    let userspace = mode == records::dut::Mode::Userspace;
    // On a remote host every DUT runs in the foreground: it is removed when its
    // ssh connection goes (`--stop-on-stdin-eof`), whatever becomes of lab.
    let foreground = userspace || port.site.is_remote();
    let b = records::args::Dut {
        netns: port.site.netns(),
        json: true,
        cmd: DutCmd::Install(records::args::DutInstall {
            program: o.program.to_owned(),
            iface: port.iface.clone(),
            mode: Some(mode),
            checksums: o.checksums.map(u64::from),
            profile: o.profile.map(str::to_owned),
            only_dst: o.only_dst.map(str::to_owned),
            allow: o.allow.to_vec(),
            allow_file: None,
            // The user-space DUT runs in the foreground, for as long as we measure.
            foreground,
            force: false,
            // Process-scoped on behalf of this lab process: if lab is killed, what it
            // installed is an orphan the next run takes over, not a persistent install.
            owner_pid: (!foreground).then(std::process::id),
        }),
    };
    if foreground && !userspace {
        let mut child = port.site.spawn("dut", &b.argv())?;
        child.wait_for_type("ready", Duration::from_secs(60))?;
        return Ok(Some(child));
    }
    if userspace {
        let mut child = port.site.spawn("dut", &b.argv())?;
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
    let out = port.site.run("dut", &b.argv())?;
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
        netns: port.site.netns(),
        json: true,
        cmd: DutCmd::Status {
            iface: Some(port.iface.clone()),
            window,
        },
    };
    let out = port.site.run("dut", &b.argv())?;
    out.check()?;
    let st = records::dut::Status::parse(&out.lines.join("\n"))
        .with_context(|| format!("reading the output of `{}`", out.command))?;
    st.on(&port.iface)
        .cloned()
        .ok_or_else(|| anyhow!("`{}`: no program on {port}", out.command))
}

/// Starts `tstamp` on mon0 of `lab` and waits for its ready line.
pub fn start_tstamp(lab: &str, files: &[(&str, PathBuf)]) -> Result<Option<Child>> {
    start_tstamp_at(
        &Site::local(testbed::mon_netns(lab)),
        testbed::MON_IFACE,
        files,
    )
}

/// Starts `tstamp` on `iface` at `site` and waits for its ready line.
pub fn start_tstamp_at(
    site: &Site,
    iface: &str,
    files: &[(&str, PathBuf)],
) -> Result<Option<Child>> {
    let mut b = records::args::Tstamp {
        netns: site.netns(),
        iface: iface.to_owned(),
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
    let mut child = site.spawn("tstamp", &b.argv())?;
    child.wait_for_type("ready", Duration::from_secs(60))?;
    Ok(Some(child))
}

/// The addresses a peer's frame carries instead of the profile's (on a
/// testbed: the generator host's and the DUT's; `None`: the profile's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameAddrs {
    /// Source MAC.
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC.
    pub dst_mac: Option<[u8; 6]>,
    /// Source IPv4 address.
    pub src_ip: Option<std::net::Ipv4Addr>,
    /// Destination IPv4 address.
    pub dst_ip: Option<std::net::Ipv4Addr>,
}

/// A trafgen configuration sending the profile's first frame, with `addrs`.
pub fn trafgen_config(profile: &str, addrs: &FrameAddrs) -> Result<String> {
    let mut p = profiles::Profile::load(profile).map_err(|e| anyhow!("{e}"))?;
    if p.ipv6.is_some() && (addrs.src_ip.is_some() || addrs.dst_ip.is_some()) {
        bail!("trafgen on a testbed: profile {profile} is IPv6, the testbed's addresses are IPv4");
    }
    if let Some(m) = addrs.src_mac {
        p.eth_src = m;
    }
    if let Some(m) = addrs.dst_mac {
        p.eth_dst = m;
    }
    if let Some(a) = addrs.src_ip {
        p.ip_src = a;
    }
    if let Some(a) = addrs.dst_ip {
        p.ip_dst = a;
    }
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

/// dnsperf's arguments: `server`, the query file, `duration`, one client,
/// one thread, at most 500 queries outstanding.
fn dnsperf_args(server: std::net::Ipv4Addr, queries: &str, duration: Duration) -> Vec<String> {
    [
        "-s",
        &server.to_string(),
        "-d",
        queries,
        "-l",
        &fmt_num(duration.as_secs_f64()),
        "-c",
        "1",
        "-T",
        "1",
        "-q",
        "500",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect()
}

/// trafgen's packet count from its exit report (`N packets outgoing`).
pub fn parse_trafgen_packets(out: &str) -> Option<u64> {
    out.lines().find_map(|l| {
        l.trim()
            .strip_suffix("packets outgoing")?
            .trim()
            .parse()
            .ok()
    })
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
        let cfg = trafgen_config("min-single-flow", &FrameAddrs::default()).unwrap();
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

    /// A synthetic DUT that loses frames above `capacity` and a generator that
    /// reaches `gen_max`: a trial as the search sees it.
    fn synthetic(rate: f64, confirm: bool, capacity: f64, gen_max: f64) -> Trial {
        let offered = rate.min(gen_max);
        let gen_short = offered < ledger::OFFERED_MIN_RATIO * rate;
        let lost = if offered > capacity {
            ((offered - capacity) * 1.0) as u64
        } else {
            0
        };
        let by = if gen_short {
            ledger::LimitedBy::Generator
        } else if lost > 0 {
            ledger::LimitedBy::Dut
        } else {
            ledger::LimitedBy::None
        };
        Trial {
            kind: if confirm { "confirm" } else { "search" },
            rate,
            duration_s: 1.0,
            offered_pps: offered,
            sent: offered as u64,
            lost,
            loss_percent: 100.0 * lost as f64 / offered,
            p99_us: None,
            passed: !gen_short && lost == 0,
            dut_ok: lost == 0,
            limited_by: by,
            reason: String::new(),
            account: Account {
                ledger: ledger::Ledger::default(),
                limited_by: by,
                reason: String::new(),
            },
        }
    }

    fn spec() -> NdrSpec {
        NdrSpec {
            low_pps: 10_000.0,
            high_pps: 10_000_000.0,
            precision: 0.01,
            loss_percent: 0.0,
            p99_us: None,
            trial: Duration::from_secs(1),
            max_trials: 20,
        }
    }

    #[test]
    fn ndr_search_converges_on_the_dut_capacity_and_confirms_it() {
        for capacity in [37_000.0, 1_234_567.0, 4_000_000.0] {
            let s = ndr_search(&spec(), |r, c| Ok(synthetic(r, c, capacity, 50e6))).unwrap();
            let best = s.best.unwrap();
            assert!(s.confirmed, "{capacity}");
            assert!(
                best <= capacity && best >= capacity * 0.99,
                "{capacity}: {best}"
            );
            assert!(s.trials.len() <= 20);
            assert_eq!(s.trials.last().unwrap().kind, "confirm");
        }
    }

    #[test]
    fn ndr_search_reports_the_generator_when_it_is_the_limit() {
        // The DUT could take 9 M, gen reaches 2 M: the search ends below gen's
        // ceiling, every failure above it the generator's.
        let s = ndr_search(&spec(), |r, c| Ok(synthetic(r, c, 9e6, 2e6))).unwrap();
        let best = s.best.unwrap();
        assert!(best <= 2e6 && best > 1.9e6, "{best}");
        assert!(
            s.trials
                .iter()
                .filter(|t| !t.passed)
                .all(|t| t.limited_by == ledger::LimitedBy::Generator)
        );
    }

    #[test]
    fn a_generator_a_hair_short_at_its_ceiling_still_gives_a_confirmed_rate() {
        // The DUT could take 9 M; gen reaches about 2 M and, near its ceiling,
        // falls 0.6 % short of any rate asked (a busy machine): no trial near
        // the top passes as asked, yet the DUT lost nothing of what it got.
        let short = |r: f64, c: bool| {
            let mut t = synthetic(r, c, 9e6, 2e6);
            if r > 1.5e6 {
                t.offered_pps = r.min(2e6) * 0.994;
                t.sent = t.offered_pps as u64;
                t.passed = false;
                t.limited_by = ledger::LimitedBy::Generator;
            }
            t
        };
        for max_trials in [12, 20] {
            let sp = NdrSpec {
                max_trials,
                precision: 0.02,
                ..spec()
            };
            let s = ndr_search(&sp, |r, c| Ok(short(r, c))).unwrap();
            let seen: Vec<_> = s
                .trials
                .iter()
                .map(|t| (t.kind, t.rate as u64, t.offered_pps as u64, t.passed))
                .collect();
            assert!(s.confirmed, "{seen:?}");
            let best = s.best.unwrap();
            // A rate the generator offered, near its ceiling: not 0, not above.
            assert!(best <= 2e6 && best > 1.9e6, "{best}: {seen:?}");
        }
        // A DUT that loses frames is not excused by a short generator.
        let s = ndr_search(&spec(), |r, c| {
            let mut t = short(r, c);
            if r > 1.5e6 {
                t.lost = 100;
                t.loss_percent = 0.01;
                t.dut_ok = false;
            }
            Ok(t)
        })
        .unwrap();
        assert!(s.best.is_some_and(|b| b <= 1.5e6), "{:?}", s.best);
    }

    #[test]
    fn ndr_search_handles_nothing_passing_the_top_passing_and_a_failed_confirmation() {
        // Even the floor fails: no rate, not confirmed.
        let s = ndr_search(&spec(), |r, c| Ok(synthetic(r, c, 5_000.0, 50e6))).unwrap();
        assert_eq!(s.best, None);
        assert!(!s.confirmed);
        // The top passes: confirmed at the top.
        let s = ndr_search(&spec(), |r, c| Ok(synthetic(r, c, 20e6, 50e6))).unwrap();
        assert_eq!(s.best, Some(10e6));
        assert!(s.confirmed);
        assert_eq!(s.trials.len(), 2);
        // Full-length trials lose above 1 M, short ones only above 3 M: the first
        // confirmation fails and the search goes on below it to confirm <= 1 M.
        let s = ndr_search(&spec(), |r, c| {
            Ok(synthetic(r, c, if c { 1e6 } else { 3e6 }, 50e6))
        })
        .unwrap();
        let seen: Vec<_> = s
            .trials
            .iter()
            .map(|t| (t.kind, t.rate as u64, t.passed))
            .collect();
        assert!(s.confirmed, "{seen:?}");
        let best = s.best.unwrap();
        assert!(best <= 1e6 && best > 0.95e6, "{best}: {seen:?}");
        assert!(s.trials.iter().filter(|t| t.kind == "confirm").count() >= 2);
        // The cap holds.
        let capped = NdrSpec {
            max_trials: 4,
            ..spec()
        };
        let s = ndr_search(&capped, |r, c| Ok(synthetic(r, c, 1_234_567.0, 50e6))).unwrap();
        assert_eq!(s.trials.len(), 4);
        assert!(!s.confirmed);
        assert!(s.best.is_some_and(|b| b <= 1_234_567.0));
    }

    #[test]
    fn wire_bit_rates_count_fcs_preamble_and_gap() {
        // 1 M frames/s of 60 bytes (64 on the wire with FCS) seen by the DUT.
        let rates = |pps: f64, bytes: f64| records::dut::Rates {
            interval_s: 1.0,
            packets_pps: pps,
            mbps: pps * bytes * 8.0 / 1e6,
            pass_pps: 0.0,
            drop_pps: pps,
            tx_pps: 0.0,
            parse_errors_pps: 0.0,
        };
        let g = wire_gbps(1e6, &rates(1e6, 60.0)).unwrap();
        assert!((g - 1e6 * (64.0 + 20.0) * 8.0 / 1e9).abs() < 1e-9, "{g}");
        // Half of them dropped: half the bits.
        let g = wire_gbps(0.5e6, &rates(1e6, 1514.0)).unwrap();
        assert!(
            (g - 0.5e6 * (1518.0 + 20.0) * 8.0 / 1e9).abs() < 1e-9,
            "{g}"
        );
        assert_eq!(wire_gbps(0.0, &rates(0.0, 0.0)), None);
    }

    #[test]
    fn every_measure_has_known_metrics() {
        for m in [
            Measure::DutRate,
            Measure::AnswerRate,
            Measure::ResponseTime,
            Measure::UpdateRate,
            Measure::Ndr,
        ] {
            for name in metrics_of(m) {
                assert_eq!(metric(name).map(|x| x.name).ok(), Some(*name));
            }
        }
        assert!(
            metric("no_such_metric").is_err(),
            "unknown names are errors"
        );
    }
}
