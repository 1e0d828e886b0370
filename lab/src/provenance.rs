//! A self-describing run: `run.json` records how the results in an output directory
//! were obtained (the machine, its kernel and clocks, each lab interface's driver,
//! features and queue placement, the tools with their git commits, the experiment
//! file's hash, and every command line run), one entry per `lab run` invocation
//! (a resumed run appends), and [`compare`] sets two output directories side by side.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::store::{self, Row, fmt_num};

/// Version of the run.json layout.
pub const RUN_SCHEMA_VERSION: u32 = 1;

/// `run.json`: every invocation that wrote into the directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// Layout version.
    pub schema_version: u32,
    /// One entry per `lab run` on this directory, oldest first.
    pub runs: Vec<RunInfo>,
}

/// One `lab run` invocation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// `lab`'s own command line.
    pub argv: Vec<String>,
    /// When it started and ended (UTC, `YYYYMMDD-HHMMSS`).
    pub started: String,
    /// End (empty while running).
    pub finished: String,
    /// The experiment: name, where it came from and the SHA-256 of its text.
    pub experiment: ExperimentInfo,
    /// `--quick`.
    pub quick: bool,
    /// Repetitions per point this invocation ran (the file's unless `--repetitions`).
    #[serde(default)]
    pub repetitions: u32,
    /// The machine.
    pub machine: Machine,
    /// Each tool's `--version` (with its git commit) and path.
    pub tools: BTreeMap<String, String>,
    /// The lab's interfaces as the first point built them: namespace/interface ->
    /// driver, features, queues, placement.
    pub interfaces: BTreeMap<String, Interface>,
    /// Every command line run, in order.
    pub commands: Vec<String>,
    /// `lab run --testbed`: each host's clock synchronisation state (chrony,
    /// PTP or systemd's view; `unknown` where none answers), read after
    /// pre-flight. Empty for local labs (one clock); absent in older files.
    #[serde(default)]
    pub clocks: Vec<crate::remote::ClockState>,
}

/// The experiment file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentInfo {
    /// Name.
    pub name: String,
    /// Path or "embedded".
    pub origin: String,
    /// SHA-256 of the file's text.
    pub sha256: String,
}

/// The machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// `uname -r` and `-v`.
    pub kernel: String,
    /// CPU model (/proc/cpuinfo).
    pub cpu_model: String,
    /// CPUs available to the run.
    pub cpus: usize,
    /// Current clocksource, and the available ones.
    pub clocksource: String,
    /// Available clocksources.
    pub clocksources_available: String,
    /// Kernel command line.
    pub cmdline: String,
    /// Whether BPF run-time statistics were on at the start.
    pub bpf_stats_enabled: String,
}

/// One interface of the lab.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    /// `ethtool -i`: driver, version, firmware, bus.
    pub driver: BTreeMap<String, String>,
    /// `ethtool -k`: the features that are on.
    pub features_on: Vec<String>,
    /// RX and TX queue counts (sysfs).
    pub rx_queues: usize,
    /// TX queues.
    pub tx_queues: usize,
    /// Per RX queue, its RPS CPU mask; per TX queue, its XPS mask.
    pub placement: BTreeMap<String, String>,
    /// Its lines of /proc/interrupts (none for veth: no IRQs).
    pub irqs: Vec<String>,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| String::new(), |s| s.trim().to_owned())
}

/// The machine this runs on.
pub fn machine() -> Machine {
    let cpu_model = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    Machine {
        kernel: format!(
            "{} {}",
            read("/proc/sys/kernel/osrelease"),
            read("/proc/sys/kernel/version")
        ),
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        clocksources_available: read(
            "/sys/devices/system/clocksource/clocksource0/available_clocksource",
        ),
        cmdline: read("/proc/cmdline"),
        bpf_stats_enabled: read("/proc/sys/kernel/bpf_stats_enabled"),
    }
}

/// SHA-256 of `text` (coreutils' `sha256sum`).
pub fn sha256(text: &str) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("run sha256sum (coreutils)")?;
    child
        .stdin
        .take()
        .context("sha256sum stdin")?
        .write_all(text.as_bytes())
        .context("write to sha256sum")?;
    let out = child.wait_with_output().context("sha256sum")?;
    let s = String::from_utf8_lossy(&out.stdout);
    s.split_whitespace()
        .next()
        .filter(|h| h.len() == 64)
        .map(str::to_owned)
        .context("sha256sum printed no hash")
}

/// Each workspace tool's `--version` line and path (or why it is missing).
pub fn tools() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for t in crate::tools::WORKSPACE_TOOLS.iter().chain(&["lab"]) {
        let v = if *t == "lab" {
            Ok((buildinfo::VERSION.to_owned(), std::env::current_exe().ok()))
        } else {
            testbed::binaries::locate(t)
                .map_err(anyhow::Error::from)
                .and_then(|p| {
                    let out = Command::new(&p)
                        .arg("--version")
                        .output()
                        .with_context(|| format!("{} --version", p.display()))?;
                    Ok((
                        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
                        Some(p),
                    ))
                })
        };
        let line = match v {
            Ok((v, p)) => format!(
                "{v} ({})",
                p.map_or_else(|| "?".into(), |p| p.display().to_string())
            ),
            Err(e) => format!("unavailable: {e:#}"),
        };
        m.insert((*t).to_owned(), line);
    }
    m
}

fn in_netns(netns: &str, args: &[&str]) -> String {
    Command::new("ip")
        .args(["netns", "exec", netns])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Every interface of the namespaces `netns` (not `lo`).
pub fn interfaces(netns: &[String]) -> BTreeMap<String, Interface> {
    let irq_text = read("/proc/interrupts");
    let mut m = BTreeMap::new();
    for ns in netns {
        let list = in_netns(ns, &["ls", "/sys/class/net"]);
        for iface in list.split_whitespace().filter(|i| *i != "lo") {
            let driver = in_netns(ns, &["ethtool", "-i", iface])
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .filter(|(_, v)| !v.is_empty())
                .collect();
            let features_on = in_netns(ns, &["ethtool", "-k", iface])
                .lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(_, v)| v.trim().starts_with("on"))
                .map(|(k, _)| k.trim().to_owned())
                .collect();
            let qdir = format!("/sys/class/net/{iface}/queues");
            let queues = in_netns(ns, &["ls", &qdir]);
            let mut placement = BTreeMap::new();
            let (mut rx, mut tx) = (0, 0);
            for q in queues.split_whitespace() {
                let file = if q.starts_with("rx-") {
                    rx += 1;
                    "rps_cpus"
                } else {
                    tx += 1;
                    "xps_cpus"
                };
                let v = in_netns(ns, &["cat", &format!("{qdir}/{q}/{file}")]);
                placement.insert(format!("{q}/{file}"), v.trim().to_owned());
            }
            let irqs = irq_text
                .lines()
                .filter(|l| l.split_whitespace().last() == Some(iface))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            m.insert(
                format!("{ns}/{iface}"),
                Interface {
                    driver,
                    features_on,
                    rx_queues: rx,
                    tx_queues: tx,
                    placement,
                    irqs,
                },
            );
        }
    }
    m
}

/// Reads `dir/run.json` (an empty file when there is none).
pub fn read_run_file(dir: &Path) -> Result<RunFile> {
    let path = dir.join("run.json");
    match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunFile {
            schema_version: RUN_SCHEMA_VERSION,
            runs: Vec::new(),
        }),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        Ok(t) => serde_json::from_str(&t)
            .with_context(|| format!("{}: not a run.json of this lab", path.display())),
    }
}

/// Writes `dir/run.json` with `info` as its last run (replacing an unfinished entry
/// of the same start).
pub fn write_run(dir: &Path, info: &RunInfo) -> Result<()> {
    let mut f = read_run_file(dir).unwrap_or_default();
    f.schema_version = RUN_SCHEMA_VERSION;
    f.runs
        .retain(|r| !(r.started == info.started && r.argv == info.argv));
    f.runs.push(info.clone());
    let text = serde_json::to_string_pretty(&f).context("run.json")?;
    store::write_atomic(&dir.join("run.json"), format!("{text}\n").as_bytes())
}

/// One line of `lab compare`: a metric at a point in both directories.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// Series.
    pub series: String,
    /// Metric.
    pub metric: String,
    /// x.
    pub x: f64,
    /// Mean in the first directory.
    pub a: f64,
    /// Mean in the second.
    pub b: f64,
    /// b / a.
    pub ratio: f64,
    /// The 99 % intervals overlap (no evidence of a difference); `None` when a side
    /// has a single repetition (no interval to compare).
    pub overlap: Option<bool>,
}

/// Compares the summaries of two output directories, per (series, metric, x) they
/// share.
pub fn compare(a: &[Row], b: &[Row]) -> Vec<Compared> {
    a.iter()
        .filter_map(|ra| {
            let rb = b
                .iter()
                .find(|r| r.series == ra.series && r.metric == ra.metric && r.x == ra.x)?;
            let (sa, sb) = (&ra.summary, &rb.summary);
            Some(Compared {
                series: ra.series.clone(),
                metric: ra.metric.clone(),
                x: ra.x,
                a: sa.mean,
                b: sb.mean,
                ratio: if sa.mean != 0.0 {
                    sb.mean / sa.mean
                } else {
                    f64::NAN
                },
                overlap: (sa.has_interval() && sb.has_interval())
                    .then_some(sa.ci99_low <= sb.ci99_high && sb.ci99_low <= sa.ci99_high),
            })
        })
        .collect()
}

/// Reads a directory's points (points.csv) into summary rows.
pub fn rows_of(dir: &Path) -> Result<Vec<Row>> {
    let path = dir.join("points.csv");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let points = store::parse_points(&text);
    if points.is_empty() {
        anyhow::bail!("{}: no measurements", path.display());
    }
    Ok(store::summarise(&points))
}

/// `lab compare A B` as text: one line per shared (series, metric, x), then where
/// the runs were made if they differ.
pub fn compare_text(a: &Path, b: &Path) -> Result<String> {
    let (ra, rb) = (rows_of(a)?, rows_of(b)?);
    let lines = compare(&ra, &rb);
    if lines.is_empty() {
        anyhow::bail!(
            "{} and {} share no (series, metric, x): runs of different experiments?",
            a.display(),
            b.display()
        );
    }
    let mut s = format!(
        "{:<28} {:<22} {:>10} {:>14} {:>14} {:>8}  99% CIs\n",
        "series", "metric", "x", "A", "B", "B/A"
    );
    for c in &lines {
        s.push_str(&format!(
            "{:<28} {:<22} {:>10} {:>14} {:>14} {:>8.3}  {}\n",
            c.series,
            c.metric,
            fmt_num(c.x),
            crate::report::fmt_val(c.a),
            crate::report::fmt_val(c.b),
            c.ratio,
            match c.overlap {
                Some(true) => "overlap",
                Some(false) => "DIFFER",
                None => "n/a (1 repetition)",
            }
        ));
    }
    let differ = lines.iter().filter(|c| c.overlap == Some(false)).count();
    let without = lines.iter().filter(|c| c.overlap.is_none()).count();
    s.push_str(&format!(
        "{} of {} compared values differ (99 % intervals apart){}\n",
        differ,
        lines.len(),
        if without > 0 {
            format!("; {without} without an interval (a single repetition) not judged")
        } else {
            String::new()
        }
    ));
    let (fa, fb) = (read_run_file(a).ok(), read_run_file(b).ok());
    if let (Some(fa), Some(fb)) = (fa, fb)
        && let (Some(x), Some(y)) = (fa.runs.last(), fb.runs.last())
    {
        if x.experiment.sha256 != y.experiment.sha256 {
            s.push_str("note: the experiment files differ (sha256)\n");
        }
        if x.machine != y.machine {
            s.push_str(&format!(
                "note: different machines or kernels: A {} / {} CPUs, B {} / {} CPUs\n",
                x.machine.kernel, x.machine.cpus, y.machine.kernel, y.machine.cpus
            ));
        }
        if x.tools.get("gen") != y.tools.get("gen") {
            s.push_str("note: different gen builds\n");
        }
    }
    Ok(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(series: &str, x: f64, vals: &[f64]) -> Row {
        Row::sample(series, x, vals, None)
    }

    #[test]
    fn compare_gives_ratios_and_whether_intervals_overlap() {
        let a = vec![
            row("s", 1.0, &[100.0, 101.0, 99.0]),
            row("s", 2.0, &[200.0, 201.0, 199.0]),
        ];
        let b = vec![
            row("s", 1.0, &[100.5, 101.5, 99.5]),
            row("s", 2.0, &[300.0, 301.0, 299.0]),
            row("t", 1.0, &[1.0]),
        ];
        let c = compare(&a, &b);
        assert_eq!(c.len(), 2, "only shared points");
        assert_eq!(c[0].overlap, Some(true));
        assert!((c[0].ratio - 1.005).abs() < 1e-9);
        assert_eq!(c[1].overlap, Some(false));
        // One repetition gives no interval: the comparison is not judged.
        let one = compare(&[row("s", 1.0, &[100.0])], &[row("s", 1.0, &[300.0])]);
        assert_eq!(one[0].overlap, None);
        assert!((one[0].ratio - 3.0).abs() < 1e-9);
        assert!((c[1].ratio - 1.5).abs() < 1e-9);
    }

    #[test]
    fn sha256_of_a_known_text() {
        assert_eq!(
            sha256("abc").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_machine_is_described() {
        let m = machine();
        assert!(!m.kernel.trim().is_empty());
        assert!(m.cpus > 0);
        assert!(!m.clocksource.is_empty(), "sysfs clocksource");
    }
}
