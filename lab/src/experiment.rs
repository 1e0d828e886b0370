//! Experiment files (`profiles/experiments/*.toml`): what `lab run` measures.
//!
//! A file names a topology, a measurement, the DUT program and its execution
//! point, the workload profile, a swept parameter with its values, the
//! duration and the repetitions (plus a shorter `[quick]` variant), and one or
//! more series, each overriding those defaults. Reading is strict and happens
//! before anything starts: unknown keys are refused (`deny_unknown_fields`),
//! values are checked against each other (a checksum sweep needs the checksum
//! program, a response time needs the switched lab's mirror port, ...), and
//! every error is one line `FILE:LINE: KEY: what is wrong`: the file is read by
//! `profiles::toml_lines`, the profiles' reader, and its rates, durations,
//! addresses and prefixes by `profiles::units`, the tools' command-line parsers.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use profiles::toml_lines::{Invalid, Spanned, TomlFile};
use profiles::units::{parse_cidr, parse_cidr_any, parse_ipv4};
use serde::Deserialize;

/// Directory of the shipped experiments, relative to the workspace root.
pub const EXPERIMENTS_DIR: &str = "profiles/experiments";

/// Shipped experiments, embedded: (name, TOML text).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "drop-rate",
        include_str!("../../profiles/experiments/drop-rate.toml"),
    ),
    (
        "checksum",
        include_str!("../../profiles/experiments/checksum.toml"),
    ),
    (
        "dns-ping-latency",
        include_str!("../../profiles/experiments/dns-ping-latency.toml"),
    ),
    (
        "dns-cache-latency",
        include_str!("../../profiles/experiments/dns-cache-latency.toml"),
    ),
    (
        "update-rate",
        include_str!("../../profiles/experiments/update-rate.toml"),
    ),
    (
        "tenants",
        include_str!("../../profiles/experiments/tenants.toml"),
    ),
    (
        "tenant-neighbour",
        include_str!("../../profiles/experiments/tenant-neighbour.toml"),
    ),
    (
        "peers",
        include_str!("../../profiles/experiments/peers.toml"),
    ),
    (
        "drop-rate-ndr",
        include_str!("../../profiles/experiments/drop-rate-ndr.toml"),
    ),
    (
        "dns-ndr",
        include_str!("../../profiles/experiments/dns-ndr.toml"),
    ),
    (
        "drop-rate-sizes",
        include_str!("../../profiles/experiments/drop-rate-sizes.toml"),
    ),
    (
        "drop-rate-imix",
        include_str!("../../profiles/experiments/drop-rate-imix.toml"),
    ),
    (
        "syn-filter",
        include_str!("../../profiles/experiments/syn-filter.toml"),
    ),
];

/// DUT programs `dut install` knows.
pub const PROGRAMS: &[&str] = &["drop", "checksum", "dns-ping", "dns-cache", "syn-filter"];

/// The frame sizes of RFC 2544 section 9.1 for Ethernet, bytes on the wire with
/// the FCS: a `frame_size` sweep without `values` measures these.
pub const RFC2544_FRAME_SIZES: &[f64] = &[64.0, 128.0, 256.0, 512.0, 1024.0, 1280.0, 1518.0];
/// The smallest and largest frame a `frame_size` sweep takes (bytes on the wire, FCS
/// included); each series' profile narrows it to what its headers need
/// (`profiles::Profile::set_frame_size`).
pub const FRAME_SIZE_RANGE: (f64, f64) = (64.0, 1518.0);
/// Execution points `dut install --mode` knows.
pub const MODES: &[&str] = &["native", "generic", "offload", "userspace"];

/// An experiment file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExperimentError {
    /// A key with a bad value, or a syntax error: `FILE:LINE: KEY: what is wrong`.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Neither a shipped name nor a readable file.
    #[error(
        "unknown experiment '{name}': not a shipped experiment ({shipped}) nor a readable file"
    )]
    Unknown {
        /// What was asked for.
        name: String,
        /// The shipped names.
        shipped: String,
    },
    /// The file could not be read.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        msg: String,
    },
}

/// The lab topology an experiment runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topo {
    /// gen0 <-> dut0.
    Direct,
    /// gen - switch (mirror to mon0) - dut.
    Switched,
    /// switched, the dut namespace a host with tenant namespaces behind a
    /// bridge, and a second direct port gen1 - dut1.
    Tenants,
}

/// Where a program runs in the tenants topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// On the host's NIC port (the "host's driver"), guarded to the tenant.
    Host,
    /// Inside the tenant's namespace, on its `ten0` (its own driver, or its
    /// user space with mode = "userspace").
    Tenant,
}

impl At {
    fn parse(s: &str) -> Option<At> {
        Some(match s {
            "host" => At::Host,
            "tenant" => At::Tenant,
            _ => return None,
        })
    }
}

/// What one measurement point measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Packets per second the DUT program processed (its counters over the
    /// traffic run), plus its per-packet cost.
    DutRate,
    /// Answers per second the traffic source got back (gen rx_pps, dnsperf qps).
    AnswerRate,
    /// Response times on the mirror port (tstamp).
    ResponseTime,
    /// Map updates per second (`dut update-bench`).
    UpdateRate,
    /// The no-drop (or partial-drop) rate: the highest rate gen offers whose loss
    /// stays within a tolerance (and p99 response time under a bound), found by
    /// search ([`NdrSpec`]).
    Ndr,
}

impl Measure {
    fn parse(s: &str) -> Option<Measure> {
        Some(match s {
            "dut-rate" => Measure::DutRate,
            "answer-rate" => Measure::AnswerRate,
            "response-time" => Measure::ResponseTime,
            "update-rate" => Measure::UpdateRate,
            "ndr" => Measure::Ndr,
            _ => return None,
        })
    }
}

/// The traffic source of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Our generator.
    Gen,
    /// netsniff-ng's trafgen (peer).
    Trafgen,
    /// dnsperf (peer).
    Dnsperf,
}

impl Source {
    /// The peer's program (`None` for gen).
    pub fn program(self) -> Option<&'static str> {
        match self {
            Source::Gen => None,
            Source::Trafgen => Some("trafgen"),
            Source::Dnsperf => Some("dnsperf"),
        }
    }

    /// The (Debian) package that installs the peer.
    pub fn package(self) -> Option<&'static str> {
        match self {
            Source::Gen => None,
            Source::Trafgen => Some("netsniff-ng"),
            Source::Dnsperf => Some("dnsperf"),
        }
    }

    fn parse(s: &str) -> Option<Source> {
        Some(match s {
            "gen" => Source::Gen,
            "trafgen" => Source::Trafgen,
            "dnsperf" => Source::Dnsperf,
            _ => return None,
        })
    }
}

/// gen's engine for a series (`engine = "afxdp" | "xdp-live"`): the type gen's
/// records carry. afxdp (the default) sends skbs in copy mode, so every DUT
/// execution point sees them; xdp-live is the fastest source here, XDP frames that
/// only a native XDP program on the receiving veth can take.
pub use records::generator::Engine;

/// The parameter an experiment sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Queues on gen0/dut0 (and gen's `--queues`).
    Queues,
    /// Checksums per packet (`dut install checksum --checksums N`).
    Checksums,
    /// Offered rate in packets/s (`gen --rate`).
    Rate,
    /// Batch size of `dut update-bench --batch`.
    Batch,
    /// Checksums per packet of the busy neighbour tenant's program.
    NeighbourChecksums,
    /// Frame size in bytes on the wire, FCS included (`gen --frame-size`).
    FrameSize,
    /// Nothing: one point per series (x = 0).
    None,
}

impl Param {
    fn parse(s: &str) -> Option<Param> {
        Some(match s {
            "queues" => Param::Queues,
            "checksums" => Param::Checksums,
            "rate" => Param::Rate,
            "batch" => Param::Batch,
            "neighbour_checksums" => Param::NeighbourChecksums,
            "frame_size" => Param::FrameSize,
            "none" => Param::None,
            _ => return None,
        })
    }
    /// Axis label with unit.
    pub fn label(self) -> &'static str {
        match self {
            Param::Queues => "queues (= cores)",
            Param::Checksums => "checksums per packet",
            Param::Rate => "offered rate [packets/s]",
            Param::Batch => "batch size [entries]",
            Param::NeighbourChecksums => "neighbour's checksums per packet",
            Param::FrameSize => "frame size [bytes on the wire, FCS included]",
            Param::None => "series",
        }
    }
    /// Name as written in files.
    pub fn key(self) -> &'static str {
        match self {
            Param::Queues => "queues",
            Param::Checksums => "checksums",
            Param::Rate => "rate",
            Param::Batch => "batch",
            Param::NeighbourChecksums => "neighbour_checksums",
            Param::FrameSize => "frame_size",
            Param::None => "none",
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One series: a line in the plots.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name (unique in the experiment).
    pub name: String,
    /// What is measured.
    pub measure: Measure,
    /// Traffic source.
    pub source: Source,
    /// gen's engine (source = gen).
    pub engine: Engine,
    /// DUT program (`None`: nothing installed).
    pub program: Option<String>,
    /// Execution point of the program.
    pub mode: String,
    /// Workload profile (shipped name or path).
    pub profile: String,
    /// gen `--rate` (`None`: as fast as it goes).
    pub rate: Option<Rate>,
    /// Queues (unless swept).
    pub queues: u32,
    /// Checksums per packet for the checksum program (unless swept).
    pub checksums: Option<u32>,
    /// `dut install --only-dst` (the tenant guard).
    pub only_dst: Option<String>,
    /// gen `--dst-ip` (e.g. a neighbour tenant's address).
    pub dst_ip: Option<String>,
    /// A neighbour tenant on the same machine burning this many checksums
    /// per packet under a flood while this series is measured (unless
    /// swept).
    pub neighbour_checksums: Option<u32>,
    /// Tenants topology: where the program runs.
    pub at: At,
    /// Tenants topology: the tenant that owns the program (1-based).
    pub tenant: u8,
    /// Tenants topology: the tenant the traffic is addressed to.
    pub dst_tenant: u8,
    /// Tenants topology: where the busy neighbour's checksum program runs.
    pub neighbour_at: At,
    /// gen `--rate` of the neighbour's flood (`None`: as fast as it goes).
    pub neighbour_rate: Option<Rate>,
    /// `dut install --allow` (syn-filter's allow-list: IPv4 or IPv6 prefixes or addresses).
    pub allow: Vec<String>,
}

/// How `measure = "ndr"` searches (`[ndr]` in the file).
#[derive(Debug, Clone, PartialEq)]
pub struct NdrSpec {
    /// Lowest rate searched, packets/s.
    pub low_pps: f64,
    /// Highest rate searched, packets/s.
    pub high_pps: f64,
    /// Stop when the bracket (highest pass .. lowest fail) is narrower than this
    /// share of its top.
    pub precision: f64,
    /// Loss tolerated, percent of the frames gen sent (0: no-drop rate, `ndr_pps`;
    /// above: partial-drop rate, `pdr_pps`).
    pub loss_percent: f64,
    /// p99 response-time bound in microseconds (tstamp on the mirror).
    pub p99_us: Option<f64>,
    /// Duration of a search trial (the confirmation runs the experiment's duration).
    pub trial: Duration,
    /// Most trials per search, the confirmations included.
    pub max_trials: u32,
}

impl NdrSpec {
    /// The metric the search reports: `ndr_pps` at zero loss tolerance, else `pdr_pps`.
    pub fn metric(&self) -> &'static str {
        if self.loss_percent > 0.0 {
            "pdr_pps"
        } else {
            "ndr_pps"
        }
    }

    /// `--quick`: shorter trials, fewer of them, a coarser precision.
    pub fn quick(&self) -> NdrSpec {
        NdrSpec {
            trial: self.trial.min(Duration::from_millis(500)),
            max_trials: self.max_trials.min(12),
            precision: self.precision.max(0.05),
            ..self.clone()
        }
    }
}

/// A ratio the report computes between two series' means at the same x.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ratio {
    /// Series in the numerator.
    pub numerator: String,
    /// Series in the denominator.
    pub denominator: String,
}

/// A checked experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Name (used in file names).
    pub name: String,
    /// Plot title.
    pub title: String,
    /// Longer description for the report.
    pub description: String,
    /// Where it was read from.
    pub origin: String,
    /// The file's text (its hash goes into run.json).
    pub text: String,
    /// Lab topology.
    pub topology: Topo,
    /// Swept parameter.
    pub parameter: Param,
    /// Sweep values (full run).
    pub values: Vec<f64>,
    /// Sweep values with `--quick`.
    pub quick_values: Vec<f64>,
    /// Duration of one traffic run.
    pub duration: Duration,
    /// Repetitions of each point.
    pub repetitions: u32,
    /// Duration with `--quick`.
    pub quick_duration: Duration,
    /// Repetitions with `--quick`.
    pub quick_repetitions: u32,
    /// The series.
    pub series: Vec<Series>,
    /// Ratios for the report.
    pub ratios: Vec<Ratio>,
    /// What is not (yet) covered, stated in the report.
    pub note: Option<String>,
    /// The search settings of `measure = "ndr"` series.
    pub ndr: Option<NdrSpec>,
}

/// Settings of one run: the experiment with `--quick` applied or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Sweep values.
    pub values: Vec<f64>,
    /// Traffic run duration.
    pub duration: Duration,
    /// Repetitions.
    pub repetitions: u32,
    /// The NDR search settings (quick ones with `--quick`).
    pub ndr: Option<NdrSpec>,
}

impl Experiment {
    /// Loads a shipped experiment by name, or a file by path.
    pub fn load(name_or_path: &str) -> Result<Experiment, ExperimentError> {
        if let Some((_, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
            return Experiment::from_toml(text, &format!("{EXPERIMENTS_DIR}/{name_or_path}.toml"));
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(ExperimentError::Unknown {
                name: name_or_path.to_owned(),
                shipped: shipped_names(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        })?;
        Experiment::from_toml(&text, &path.display().to_string())
    }

    /// Parses and checks an experiment; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Experiment, ExperimentError> {
        let cx = TomlFile::new(text, origin);
        let raw: RawFile = cx.parse()?;
        Ok(resolve(&cx, raw)?)
    }

    /// The settings for a full run or a `--quick` one.
    pub fn plan(&self, quick: bool) -> Plan {
        if quick {
            Plan {
                values: self.quick_values.clone(),
                duration: self.quick_duration,
                repetitions: self.quick_repetitions,
                ndr: self.ndr.as_ref().map(NdrSpec::quick),
            }
        } else {
            Plan {
                values: self.values.clone(),
                duration: self.duration,
                repetitions: self.repetitions,
                ndr: self.ndr.clone(),
            }
        }
    }

    /// Peer tools the series use (`trafgen`, `dnsperf`).
    pub fn peers(&self) -> Vec<Source> {
        let mut v: Vec<Source> = self
            .series
            .iter()
            .map(|s| s.source)
            .filter(|s| *s != Source::Gen)
            .collect();
        v.dedup();
        v
    }
}

/// Comma-separated shipped experiment names.
pub fn shipped_names() -> String {
    SHIPPED
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Path of the experiments directory in the source tree (for messages).
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(EXPERIMENTS_DIR)
}

/// Rates as every tool reads them (`50k`, `1.5M` packets/s; `5Gbit` bits/s on the
/// wire); durations likewise (`30s`, `500ms`, `2m`): the one parser set in
/// `profiles::units`, so a file says nothing gen would refuse and refuses nothing gen
/// takes.
pub use profiles::units::Rate;
use profiles::units::{parse_duration, parse_rate};

// ------------------------------------------------------------------------------------
// Raw file: values with spans.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Spanned<String>,
    title: Option<String>,
    description: Option<String>,
    topology: Option<Spanned<String>>,
    measure: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    engine: Option<Spanned<String>>,
    program: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    rate: Option<Spanned<String>>,
    queues: Option<Spanned<i64>>,
    checksums: Option<Spanned<i64>>,
    only_dst: Option<Spanned<String>>,
    dst_ip: Option<Spanned<String>>,
    allow: Option<Spanned<Vec<String>>>,
    duration: Spanned<String>,
    repetitions: Spanned<i64>,
    note: Option<String>,
    quick: Option<RawQuick>,
    sweep: Option<RawSweep>,
    series: Spanned<Vec<RawSeries>>,
    #[serde(default)]
    ratio: Vec<RawRatio>,
    ndr: Option<RawNdr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNdr {
    low: Option<Spanned<String>>,
    high: Spanned<String>,
    precision: Option<Spanned<f64>>,
    loss_percent: Option<Spanned<f64>>,
    p99_us: Option<Spanned<f64>>,
    trial: Option<Spanned<String>>,
    max_trials: Option<Spanned<i64>>,
}

/// The file-level defaults of the series settings.
struct RawSettings {
    measure: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    engine: Option<Spanned<String>>,
    program: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    rate: Option<Spanned<String>>,
    queues: Option<Spanned<i64>>,
    checksums: Option<Spanned<i64>>,
    only_dst: Option<Spanned<String>>,
    dst_ip: Option<Spanned<String>>,
    allow: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuick {
    duration: Option<Spanned<String>>,
    repetitions: Option<Spanned<i64>>,
    values: Option<Spanned<Vec<toml::Value>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    parameter: Spanned<String>,
    values: Option<Spanned<Vec<toml::Value>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    name: Spanned<String>,
    measure: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    engine: Option<Spanned<String>>,
    program: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    rate: Option<Spanned<String>>,
    queues: Option<Spanned<i64>>,
    checksums: Option<Spanned<i64>>,
    only_dst: Option<Spanned<String>>,
    dst_ip: Option<Spanned<String>>,
    neighbour_checksums: Option<Spanned<i64>>,
    at: Option<Spanned<String>>,
    tenant: Option<Spanned<i64>>,
    dst_tenant: Option<Spanned<i64>>,
    neighbour_at: Option<Spanned<String>>,
    neighbour_rate: Option<Spanned<String>>,
    allow: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRatio {
    numerator: Spanned<String>,
    denominator: Spanned<String>,
}

/// Series settings after laying a series over the file's defaults.
fn pick<'a>(
    s: &'a Option<Spanned<String>>,
    d: &'a Option<Spanned<String>>,
) -> Option<&'a Spanned<String>> {
    s.as_ref().or(d.as_ref())
}

/// A list setting of a series over the file's default.
fn pick_list<'a>(
    s: &'a Option<Spanned<Vec<String>>>,
    d: &'a Option<Spanned<Vec<String>>>,
) -> Option<&'a Spanned<Vec<String>>> {
    s.as_ref().or(d.as_ref())
}

/// Every swept frame size fits the series' profile: its headers (and DNS query)
/// need at least its minimum size, its tags allow at most its maximum; the profile's
/// own check (`set_frame_size`, what gen runs on `--frame-size`). A DNS profile's
/// frames are its queries, whose size the names decide: refused.
fn frame_sizes_fit(
    cx: &TomlFile<'_>,
    prof: &profiles::Profile,
    at: &Spanned<String>,
    sizes: &[f64],
    (key, span): &(&str, Range<usize>),
) -> Result<(), Invalid> {
    if prof.dns.is_some() {
        return cx.err(
            at.span(),
            "profile",
            format!(
                "'{}' is a DNS profile: its frames are its queries, sized by the names; sweep frame_size with a non-DNS profile",
                at.get_ref()
            ),
        );
    }
    for &v in sizes {
        prof.clone()
            .set_frame_size(v as usize)
            .or_else(|e| cx.err(span.clone(), key, e))?;
    }
    Ok(())
}

fn resolve(cx: &TomlFile<'_>, raw: RawFile) -> Result<Experiment, Invalid> {
    let name = raw.name.get_ref().trim().to_owned();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return cx.err(
            raw.name.span(),
            "name",
            "must be non-empty and use only [A-Za-z0-9_-] (it names files)",
        );
    }
    let topology = match &raw.topology {
        None => Topo::Direct,
        Some(t) => cx.one_of(
            t,
            "topology",
            |s| match s {
                "direct" => Some(Topo::Direct),
                "switched" => Some(Topo::Switched),
                "tenants" => Some(Topo::Tenants),
                _ => None,
            },
            "direct, switched, tenants",
        )?,
    };
    let duration = cx.value(&raw.duration, "duration", parse_duration)?;
    let repetitions = cx.int::<u32>(&raw.repetitions, "repetitions", 1, 1000)?;

    // Where the sweep's values stand (the parameter's line when they are the
    // default), for errors found once a series' profile is known.
    let mut values_at = ("sweep.values", 0..0);
    let (parameter, values) = match &raw.sweep {
        None => (Param::None, vec![0.0]),
        Some(sw) => {
            let p = cx.one_of(
                &sw.parameter,
                "sweep.parameter",
                Param::parse,
                "queues, checksums, rate, batch, neighbour_checksums, frame_size, none",
            )?;
            let vals = match &sw.values {
                Some(v) => {
                    values_at.1 = v.span();
                    sweep_values(cx, p, v, "sweep.values")?
                }
                None if p == Param::FrameSize => {
                    values_at = ("sweep.parameter", sw.parameter.span());
                    RFC2544_FRAME_SIZES.to_vec()
                }
                None => {
                    return cx.err(
                        sw.parameter.span(),
                        "sweep.values",
                        format!("give the values of {p} to measure (`values = [...]`; only frame_size has a default, the RFC 2544 sizes)"),
                    );
                }
            };
            (p, vals)
        }
    };
    let mut quick_at = values_at.clone();
    let (mut quick_duration, mut quick_repetitions, mut quick_values) = (
        duration.min(Duration::from_secs(3)),
        repetitions.min(2),
        values.clone(),
    );
    if let Some(q) = &raw.quick {
        if let Some(d) = &q.duration {
            quick_duration = cx.value(d, "quick.duration", parse_duration)?;
        }
        if let Some(r) = &q.repetitions {
            quick_repetitions = cx.int::<u32>(r, "quick.repetitions", 1, 1000)?;
        }
        if let Some(v) = &q.values {
            if parameter == Param::None {
                return cx.err(
                    v.span(),
                    "quick.values",
                    "the experiment sweeps nothing ([sweep] is missing)",
                );
            }
            quick_values = sweep_values(cx, parameter, v, "quick.values")?;
            quick_at = ("quick.values", v.span());
        }
    }

    let ndr = match &raw.ndr {
        None => None,
        Some(n) => Some(ndr_spec(cx, n)?),
    };
    if raw.series.get_ref().is_empty() {
        return cx.err(raw.series.span(), "series", "give at least one [[series]]");
    }
    let d = &RawSettings {
        measure: raw.measure,
        source: raw.source,
        engine: raw.engine,
        program: raw.program,
        mode: raw.mode,
        profile: raw.profile,
        rate: raw.rate,
        queues: raw.queues,
        checksums: raw.checksums,
        only_dst: raw.only_dst,
        dst_ip: raw.dst_ip,
        allow: raw.allow,
    };
    let mut series: Vec<Series> = Vec::new();
    for s in raw.series.get_ref() {
        let sname = s.name.get_ref().trim().to_owned();
        if sname.is_empty() || sname.contains(',') || sname.contains('"') {
            return cx.err(
                s.name.span(),
                "series.name",
                "must be non-empty, without commas or quotes",
            );
        }
        if series.iter().any(|o| o.name == sname) {
            return cx.err(
                s.name.span(),
                "series.name",
                format!("'{sname}' appears twice"),
            );
        }
        let measure = match pick(&s.measure, &d.measure) {
            Some(m) => cx.one_of(
                m,
                "measure",
                Measure::parse,
                "dut-rate, answer-rate, response-time, update-rate, ndr",
            )?,
            None => {
                return cx.err(
                    s.name.span(),
                    "measure",
                    "no measure for this series (set `measure` at the top or in the series)",
                );
            }
        };
        let source = match pick(&s.source, &d.source) {
            Some(m) => cx.one_of(m, "source", Source::parse, "gen, trafgen, dnsperf")?,
            None => Source::Gen,
        };
        let engine_key = pick(&s.engine, &d.engine);
        let engine = match engine_key {
            Some(e) => {
                if source != Source::Gen {
                    return cx.err(
                        e.span(),
                        "engine",
                        "gen's engine: only for source = \"gen\"",
                    );
                }
                cx.one_of(e, "engine", |s| s.parse().ok(), "afxdp, xdp-live")?
            }
            None => Engine::Afxdp,
        };
        let program = match pick(&s.program, &d.program) {
            None => None,
            Some(p) if p.get_ref() == "none" => None,
            Some(p) => {
                if !PROGRAMS.contains(&p.get_ref().as_str()) {
                    return cx.err(
                        p.span(),
                        "program",
                        format!(
                            "unknown program '{}' (one of {}, none)",
                            p.get_ref(),
                            PROGRAMS.join(", ")
                        ),
                    );
                }
                Some(p.get_ref().clone())
            }
        };
        let mode = match pick(&s.mode, &d.mode) {
            None => "native".to_owned(),
            Some(m) => {
                if !MODES.contains(&m.get_ref().as_str()) {
                    return cx.err(
                        m.span(),
                        "mode",
                        format!(
                            "unknown execution point '{}' (one of {})",
                            m.get_ref(),
                            MODES.join(", ")
                        ),
                    );
                }
                m.get_ref().clone()
            }
        };
        let profile = match pick(&s.profile, &d.profile) {
            None => {
                return cx.err(
                    s.name.span(),
                    "profile",
                    "no workload profile for this series",
                );
            }
            Some(p) => {
                let prof = profiles::Profile::load(p.get_ref())
                    .or_else(|e| cx.err(p.span(), "profile", e.to_string()))?;
                if matches!(program.as_deref(), Some("dns-ping" | "dns-cache"))
                    && prof.dns.is_none()
                {
                    return cx.err(
                        p.span(),
                        "profile",
                        format!(
                            "'{}' is not a DNS profile, but the program answers DNS",
                            p.get_ref()
                        ),
                    );
                }
                if source == Source::Dnsperf && prof.dns.is_none() {
                    return cx.err(
                        p.span(),
                        "profile",
                        "dnsperf needs a DNS profile (its names are the queries)",
                    );
                }
                if parameter == Param::FrameSize {
                    frame_sizes_fit(cx, &prof, p, &values, &values_at)?;
                    frame_sizes_fit(cx, &prof, p, &quick_values, &quick_at)?;
                }
                p.get_ref().clone()
            }
        };
        let rate = match pick(&s.rate, &d.rate) {
            None => None,
            Some(r) if r.get_ref() == "max" => None,
            Some(r) => Some(cx.value(r, "rate", parse_rate)?),
        };
        let queues = match s.queues.as_ref().or(d.queues.as_ref()) {
            None => 1,
            Some(q) => cx.int::<u32>(q, "queues", 1, i64::from(testbed::MAX_QUEUES))?,
        };
        let checksums = match s.checksums.as_ref().or(d.checksums.as_ref()) {
            None => None,
            Some(c) => {
                if program.as_deref() != Some("checksum") {
                    return cx.err(
                        c.span(),
                        "checksums",
                        "only the checksum program takes checksums",
                    );
                }
                Some(cx.int::<u32>(c, "checksums", 0, 100_000)?)
            }
        };
        let only_dst = pick(&s.only_dst, &d.only_dst)
            .map(|v| {
                cx.value(v, "only_dst", parse_cidr)
                    .map(|_| v.get_ref().clone())
            })
            .transpose()?;
        let dst_ip = pick(&s.dst_ip, &d.dst_ip)
            .map(|v| {
                cx.value(v, "dst_ip", parse_ipv4)
                    .map(|_| v.get_ref().clone())
            })
            .transpose()?;

        let neighbour_checksums = match &s.neighbour_checksums {
            None => None,
            Some(n) => {
                if measure != Measure::ResponseTime {
                    return cx.err(n.span(), "neighbour_checksums", "a busy neighbour is measured by its effect on response times: needs measure = \"response-time\"");
                }
                Some(cx.int::<u32>(n, "neighbour_checksums", 0, 100_000)?)
            }
        };
        if parameter == Param::NeighbourChecksums && measure != Measure::ResponseTime {
            return cx.err(
                s.name.span(),
                "sweep.parameter",
                "a busy neighbour is measured by its effect on response times: needs measure = \"response-time\"",
            );
        }
        // Tenants: where the program runs, whose it is, where traffic goes.
        let tenants_only = |key: &str, span: Range<usize>| -> Result<(), Invalid> {
            if topology == Topo::Tenants {
                Ok(())
            } else {
                cx.err(
                    span,
                    key,
                    "only the tenants topology has tenants (topology = \"tenants\")",
                )
            }
        };
        let tenant_no = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<u8>, Invalid> {
            match v {
                None => Ok(None),
                Some(t) => {
                    tenants_only(key, t.span())?;
                    Ok(Some(cx.int::<u8>(
                        t,
                        key,
                        1,
                        i64::from(testbed::TENANTS),
                    )?))
                }
            }
        };
        let where_ = |v: &Option<Spanned<String>>, key: &str| -> Result<At, Invalid> {
            match v {
                None => Ok(At::Host),
                Some(a) => {
                    tenants_only(key, a.span())?;
                    cx.one_of(a, key, At::parse, "host, tenant")
                }
            }
        };
        let at_ = where_(&s.at, "at")?;
        let tenant = tenant_no(&s.tenant, "tenant")?.unwrap_or(1);
        let dst_tenant = tenant_no(&s.dst_tenant, "dst_tenant")?.unwrap_or(tenant);
        let neighbour_at = where_(&s.neighbour_at, "neighbour_at")?;
        let neighbour_rate = match &s.neighbour_rate {
            None => None,
            Some(r) => Some(cx.value(r, "neighbour_rate", parse_rate)?),
        };
        let busy_neighbour =
            neighbour_checksums.is_some() || parameter == Param::NeighbourChecksums;
        if topology == Topo::Tenants && busy_neighbour && (tenant == 2 || dst_tenant == 2) {
            return cx.err(
                s.name.span(),
                "tenant",
                "tenant 2 is the busy neighbour: measure tenant 1",
            );
        }
        if topology == Topo::Tenants && dst_ip.is_some() {
            return cx.err(
                s.name.span(),
                "dst_ip",
                "in the tenants topology traffic goes to a tenant: use dst_tenant",
            );
        }
        if (s.neighbour_at.is_some() || s.neighbour_rate.is_some()) && !busy_neighbour {
            return cx.err(
                s.name.span(),
                "neighbour_at",
                "no busy neighbour in this series (set neighbour_checksums or sweep them)",
            );
        }
        // On the host, a tenant's program is guarded to the tenant's address.
        let only_dst = match (topology, at_, only_dst) {
            (Topo::Tenants, At::Host, None) if program.is_some() => {
                Some(format!("{}/32", testbed::tenant_ip(tenant)))
            }
            (_, _, o) => o,
        };
        // Cross-checks: what this series measures must be possible here.
        let at = s.name.span();
        match measure {
            Measure::ResponseTime if !matches!(topology, Topo::Switched | Topo::Tenants) => {
                return cx.err(
                    at,
                    "measure",
                    "response-time needs topology = \"switched\" or \"tenants\" (the mirror port)",
                );
            }
            Measure::ResponseTime | Measure::AnswerRate
                if !matches!(program.as_deref(), Some("dns-ping" | "dns-cache")) =>
            {
                return cx.err(
                    at,
                    "program",
                    "answers need a responder: program dns-ping or dns-cache",
                );
            }
            Measure::DutRate if program.is_none() => {
                return cx.err(
                    at,
                    "program",
                    "dut-rate reads the DUT program's counters: name a program",
                );
            }
            Measure::Ndr if program.is_none() => {
                return cx.err(
                    at,
                    "program",
                    "ndr counts what the DUT program handled: name a program",
                );
            }
            Measure::Ndr if source != Source::Gen => {
                return cx.err(
                    at,
                    "source",
                    "ndr searches gen's paced rate: source = \"gen\"",
                );
            }
            Measure::Ndr if ndr.is_none() => {
                return cx.err(
                    at,
                    "measure",
                    "measure = \"ndr\" needs an [ndr] table (at least `high`, the top of the search)",
                );
            }
            Measure::Ndr if parameter == Param::Rate => {
                return cx.err(
                    at,
                    "sweep.parameter",
                    "ndr searches the rate itself: sweep something else",
                );
            }
            Measure::Ndr
                if ndr.as_ref().is_some_and(|n| n.p99_us.is_some())
                    && (topology == Topo::Direct
                        || !matches!(program.as_deref(), Some("dns-ping" | "dns-cache"))) =>
            {
                return cx.err(
                    at,
                    "ndr.p99_us",
                    "a response-time bound needs the mirror (topology switched or tenants) and a responder (dns-ping or dns-cache)",
                );
            }
            Measure::UpdateRate if source != Source::Gen => {
                return cx.err(
                    at,
                    "source",
                    "update-rate runs no traffic (source must be gen or unset)",
                );
            }
            _ => {}
        }
        match (source, measure) {
            (Source::Trafgen, Measure::DutRate)
            | (Source::Dnsperf, Measure::AnswerRate)
            | (Source::Gen, _) => {}
            (Source::Trafgen, _) => {
                return cx.err(at, "source", "trafgen only serves measure = \"dut-rate\"");
            }
            (Source::Dnsperf, _) => {
                return cx.err(
                    at,
                    "source",
                    "dnsperf only serves measure = \"answer-rate\"",
                );
            }
        }
        match parameter {
            Param::Checksums if program.as_deref() != Some("checksum") => {
                return cx.err(
                    at,
                    "sweep.parameter",
                    "sweeping checksums needs program = \"checksum\"",
                );
            }
            Param::Batch if measure != Measure::UpdateRate => {
                return cx.err(
                    at,
                    "sweep.parameter",
                    "sweeping batch needs measure = \"update-rate\"",
                );
            }
            Param::Rate if source != Source::Gen => {
                return cx.err(at, "sweep.parameter", "only gen takes a paced rate");
            }
            Param::Queues if source == Source::Dnsperf => {
                return cx.err(at, "sweep.parameter", "dnsperf does not take queues");
            }
            _ => {}
        }
        if engine == Engine::XdpLive
            && mode == "generic"
            && let Some(e) = engine_key
        {
            return cx.err(
                e.span(),
                "engine",
                "xdp-live sends XDP frames, which veth drops unless the receiving port has a native XDP program, and generic mode leaves dut0 without one (the DUT would see nothing): use engine = \"afxdp\" for this series",
            );
        }
        if mode == "generic" && topology != Topo::Direct && program.is_some() {
            return cx.err(
                at,
                "mode",
                "generic XDP on a port behind the lab's switch sees no frames: the switch forwards with tc mirred, and the kernel skips generic XDP for redirected skbs (skb_is_redirected); use topology = \"direct\"",
            );
        }
        if parameter == Param::FrameSize
            && (source != Source::Gen || measure == Measure::UpdateRate)
        {
            return cx.err(
                at,
                "sweep.parameter",
                "only gen's traffic takes a frame size (gen --frame-size)",
            );
        }
        let allow = match pick_list(&s.allow, &d.allow) {
            None => Vec::new(),
            Some(a) => {
                if program.as_deref() != Some("syn-filter") {
                    return cx.err(
                        a.span(),
                        "allow",
                        "only the syn-filter program takes an allow-list",
                    );
                }
                for c in a.get_ref() {
                    parse_cidr_any(c).or_else(|e| cx.err(a.span(), "allow", e))?;
                }
                a.get_ref().clone()
            }
        };
        if mode == "userspace" && measure == Measure::ResponseTime && program.is_none() {
            return cx.err(at, "mode", "userspace needs a program");
        }
        series.push(Series {
            name: sname,
            measure,
            source,
            engine,
            program,
            mode,
            profile,
            rate,
            queues,
            checksums,
            only_dst,
            dst_ip,
            neighbour_checksums,
            at: at_,
            tenant,
            dst_tenant,
            neighbour_at,
            neighbour_rate,
            allow,
        });
    }

    let mut ratios = Vec::new();
    for r in &raw.ratio {
        for v in [&r.numerator, &r.denominator] {
            if !series.iter().any(|s| &s.name == v.get_ref()) {
                return cx.err(
                    v.span(),
                    "ratio",
                    format!("no series named '{}'", v.get_ref()),
                );
            }
        }
        ratios.push(Ratio {
            numerator: r.numerator.get_ref().clone(),
            denominator: r.denominator.get_ref().clone(),
        });
    }

    Ok(Experiment {
        title: raw.title.unwrap_or_else(|| name.clone()),
        name,
        description: raw.description.unwrap_or_default(),
        origin: cx.origin.to_owned(),
        text: cx.text.to_owned(),
        topology,
        parameter,
        values,
        quick_values,
        duration,
        repetitions,
        quick_duration,
        quick_repetitions,
        series,
        ratios,
        note: raw.note,
        ndr,
    })
}

fn ndr_spec(cx: &TomlFile<'_>, n: &RawNdr) -> Result<NdrSpec, Invalid> {
    let pps = |v: &Spanned<String>, key: &str| -> Result<f64, Invalid> {
        match cx.value(v, key, parse_rate)? {
            Rate::Pps(p) if p > 0.0 => Ok(p),
            _ => cx.err(v.span(), key, "a packet rate above 0 (e.g. 10k, 2.5M)"),
        }
    };
    let high_pps = pps(&n.high, "ndr.high")?;
    let low_pps = match &n.low {
        Some(l) => pps(l, "ndr.low")?,
        None => (high_pps / 1000.0).max(1.0),
    };
    if low_pps >= high_pps {
        return cx.err(n.high.span(), "ndr.high", "must be above ndr.low");
    }
    let frac = |v: &Option<Spanned<f64>>, key: &str, lo: f64, hi: f64, default: f64| match v {
        None => Ok(default),
        Some(x) if (lo..=hi).contains(x.get_ref()) => Ok(*x.get_ref()),
        Some(x) => cx.err(x.span(), key, format!("must be in {lo} .. {hi}")),
    };
    let precision = frac(&n.precision, "ndr.precision", 0.001, 0.5, 0.01)?;
    let loss_percent = frac(&n.loss_percent, "ndr.loss_percent", 0.0, 50.0, 0.0)?;
    let p99_us = match &n.p99_us {
        None => None,
        Some(p) if *p.get_ref() > 0.0 => Some(*p.get_ref()),
        Some(p) => return cx.err(p.span(), "ndr.p99_us", "a bound above 0 microseconds"),
    };
    let trial = match &n.trial {
        None => Duration::from_secs(1),
        Some(t) => cx.value(t, "ndr.trial", parse_duration)?,
    };
    let max_trials = match &n.max_trials {
        None => 20,
        Some(m) => cx.int::<u32>(m, "ndr.max_trials", 2, 200)?,
    };
    Ok(NdrSpec {
        low_pps,
        high_pps,
        precision,
        loss_percent,
        p99_us,
        trial,
        max_trials,
    })
}

/// Sweep values: numbers, and for a rate sweep also rates as gen takes them in
/// packets/s (`50k`, `1.5M`); then checked for the parameter.
fn sweep_values(
    cx: &TomlFile<'_>,
    p: Param,
    vals: &Spanned<Vec<toml::Value>>,
    key: &str,
) -> Result<Vec<f64>, Invalid> {
    let bad = |m: String| cx.err(vals.span(), key, m);
    let mut out = Vec::with_capacity(vals.get_ref().len());
    for v in vals.get_ref() {
        out.push(match v {
            toml::Value::Integer(i) => *i as f64,
            toml::Value::Float(f) => *f,
            toml::Value::String(s) if p == Param::Rate => match parse_rate(s) {
                Ok(Rate::Pps(pps)) => pps,
                Ok(Rate::Bits(_)) => {
                    return bad(format!(
                        "'{s}' is a bit rate: a swept rate is in packets/s (e.g. 50k, 1.5M)"
                    ));
                }
                Err(m) => return bad(m),
            },
            other if p == Param::Rate => {
                return bad(format!(
                    "{other} is not a rate (numbers or e.g. \"50k\", \"1.5M\" packets/s)"
                ));
            }
            other => return bad(format!("{other} is not a number")),
        });
    }
    check_values(cx, p, &out, vals.span(), key)?;
    Ok(out)
}

fn check_values(
    cx: &TomlFile<'_>,
    p: Param,
    vals: &[f64],
    span: Range<usize>,
    key: &str,
) -> Result<(), Invalid> {
    if vals.is_empty() {
        return cx.err(span, key, "must not be empty");
    }
    for (i, v) in vals.iter().enumerate() {
        let bad = |m: String| cx.err(span.clone(), key, m);
        if !v.is_finite() || *v < 0.0 {
            return bad(format!("{v} is not a valid {p}"));
        }
        if vals[..i].contains(v) {
            return bad(format!("{v} appears twice"));
        }
        let integer = v.fract() == 0.0;
        match p {
            Param::Queues if !integer || *v < 1.0 || *v > f64::from(testbed::MAX_QUEUES) => {
                return bad(format!(
                    "{v} queues is impossible (whole numbers 1 to {})",
                    testbed::MAX_QUEUES
                ));
            }
            Param::Checksums | Param::NeighbourChecksums if !integer || *v > 100_000.0 => {
                return bad(format!(
                    "{v} checksums is impossible (whole numbers 0 to 100000)"
                ));
            }
            Param::Rate if *v < 1.0 => {
                return bad(format!("rate {v} packets/s is impossible (at least 1)"));
            }
            Param::Batch if !integer || *v < 1.0 => {
                return bad(format!(
                    "batch {v} is impossible (whole numbers, at least 1)"
                ));
            }
            Param::FrameSize if !integer || *v < FRAME_SIZE_RANGE.0 || *v > FRAME_SIZE_RANGE.1 => {
                return bad(format!(
                    "frame size {v} is impossible (whole bytes on the wire, FCS included, {} to {})",
                    FRAME_SIZE_RANGE.0, FRAME_SIZE_RANGE.1
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_experiment_loads() {
        for (name, _) in SHIPPED {
            let e = Experiment::load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&e.name, name);
            assert!(!e.series.is_empty());
            assert!(!e.plan(true).values.is_empty());
            assert!(e.plan(true).duration <= e.plan(false).duration);
        }
    }

    #[test]
    fn every_file_in_the_directory_is_shipped() {
        let dir = source_dir();
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("experiments dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                assert!(
                    SHIPPED.iter().any(|(n, _)| *n == stem),
                    "{} is not in SHIPPED",
                    path.display()
                );
                Experiment::load(path.to_str().expect("utf-8")).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert_eq!(n, SHIPPED.len());
    }

    const BASE: &str = "name = \"t\"\nmeasure = \"dut-rate\"\nprogram = \"drop\"\nprofile = \"min-multi-flow\"\nduration = \"2s\"\nrepetitions = 3\n";

    fn err(text: &str) -> String {
        Experiment::from_toml(text, "x.toml")
            .expect_err("must fail")
            .to_string()
    }

    #[test]
    fn a_minimal_file_gets_defaults() {
        let e =
            Experiment::from_toml(&format!("{BASE}[[series]]\nname = \"a\"\n"), "x.toml").unwrap();
        assert_eq!(e.parameter, Param::None);
        assert_eq!(e.values, vec![0.0]);
        assert_eq!(e.series[0].mode, "native");
        assert_eq!(e.series[0].queues, 1);
        assert_eq!(e.duration, Duration::from_secs(2));
        assert_eq!(e.plan(true).repetitions, 2);
    }

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let m = err(&format!(
            "{BASE}colour = \"red\"\n[[series]]\nname = \"a\"\n"
        ));
        assert!(m.starts_with("x.toml:7: colour:"), "{m}");
        let m = err(&format!("{BASE}[[series]]\nname = \"a\"\nspeed = 3\n"));
        assert!(m.starts_with("x.toml:9: speed:"), "{m}");
        let m = err(&format!(
            "{BASE}[sweep]\nparameter = \"queues\"\nvalues = [1]\nstep = 2\n[[series]]\nname = \"a\"\n"
        ));
        assert!(m.starts_with("x.toml:10: step:"), "{m}");
    }

    #[test]
    fn bad_values_name_their_line() {
        let m = err(&format!(
            "{}[[series]]\nname = \"a\"\n",
            BASE.replace("\"drop\"", "\"dorp\"")
        ));
        assert!(
            m.starts_with("x.toml:3: program: unknown program 'dorp'"),
            "{m}"
        );
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nprofile = \"no-such\"\n"
        ));
        assert!(m.starts_with("x.toml:9: profile:"), "{m}");
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nmode = \"kernel\"\n"
        ));
        assert!(
            m.starts_with("x.toml:9: mode: unknown execution point"),
            "{m}"
        );
        let m = err(&format!(
            "{}[[series]]\nname = \"a\"\n",
            BASE.replace("\"2s\"", "\"fast\"")
        ));
        assert!(m.starts_with("x.toml:5: duration:"), "{m}");
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nrate = \"lots\"\n"
        ));
        assert!(m.starts_with("x.toml:9: rate:"), "{m}");
    }

    #[test]
    fn engine_is_chosen_per_series_and_xdp_live_into_generic_is_refused() {
        let e = Experiment::from_toml(
            &format!(
                "{BASE}engine = \"xdp-live\"\n[[series]]\nname = \"a\"\n[[series]]\nname = \"b\"\nmode = \"generic\"\nengine = \"afxdp\"\n"
            ),
            "x.toml",
        )
        .expect("valid");
        assert_eq!(e.series[0].engine, Engine::XdpLive);
        assert_eq!(e.series[1].engine, Engine::Afxdp);
        // Inherited from the top of the file: the error names that line.
        let m = err(&format!(
            "{BASE}engine = \"xdp-live\"\n[[series]]\nname = \"a\"\nmode = \"generic\"\n"
        ));
        assert!(
            m.starts_with("x.toml:7: engine: xdp-live sends XDP frames"),
            "{m}"
        );
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nengine = \"dpdk\"\n"
        ));
        assert!(
            m.starts_with("x.toml:9: engine:") && m.contains("afxdp, xdp-live"),
            "{m}"
        );
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nsource = \"trafgen\"\nengine = \"xdp-live\"\n"
        ));
        assert!(m.starts_with("x.toml:10: engine: gen's engine"), "{m}");
    }

    #[test]
    fn impossible_sweeps_are_refused() {
        let sweep = |p: &str, v: &str| {
            format!("{BASE}[sweep]\nparameter = \"{p}\"\nvalues = {v}\n[[series]]\nname = \"a\"\n")
        };
        let m = err(&sweep("queues", "[0, 1]"));
        assert!(
            m.starts_with("x.toml:9: sweep.values: 0 queues is impossible"),
            "{m}"
        );
        let m = err(&sweep("queues", "[1.5]"));
        assert!(m.contains("sweep.values"), "{m}");
        let m = err(&sweep("queues", "[]"));
        assert!(m.contains("sweep.values: must not be empty"), "{m}");
        let m = err(&sweep("rate", "[1000, 1000]"));
        assert!(m.contains("appears twice"), "{m}");
        // A checksum sweep on the drop program.
        let m = err(&sweep("checksums", "[0, 10]"));
        assert!(
            m.starts_with("x.toml:11: sweep.parameter: sweeping checksums needs program"),
            "{m}"
        );
        // Rates as gen takes them, in packets/s (the x axis).
        let e =
            Experiment::from_toml(&sweep("rate", "[1000, \"50k\", \"1.5M\"]"), "x.toml").unwrap();
        assert_eq!(e.values, vec![1000.0, 50e3, 1.5e6]);
        let m = err(&sweep("rate", "[\"5Gbit\"]"));
        assert_eq!(
            m,
            "x.toml:9: sweep.values: '5Gbit' is a bit rate: a swept rate is in packets/s (e.g. 50k, 1.5M)"
        );
        let m = err(&sweep("rate", "[\"lots\"]"));
        assert!(
            m.starts_with("x.toml:9: sweep.values: rate `lots`: expected"),
            "{m}"
        );
        let m = err(&sweep("queues", "[\"2\"]"));
        assert_eq!(m, "x.toml:9: sweep.values: \"2\" is not a number");
        let m = err(&sweep("temperature", "[1]"));
        assert!(
            m.starts_with("x.toml:8: sweep.parameter: unknown value 'temperature'"),
            "{m}"
        );
    }

    #[test]
    fn impossible_combinations_are_refused() {
        // Response time needs the mirror port.
        let t = BASE
            .replace("dut-rate", "response-time")
            .replace("drop", "dns-ping")
            .replace("min-multi-flow", "dns-ping");
        let m = err(&format!("{t}[[series]]\nname = \"a\"\n"));
        assert!(m.contains("measure: response-time needs topology"), "{m}");
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\n[[series]]\nname = \"a\"\n"
        ));
        assert!(
            m.starts_with("x.toml:10: series.name: 'a' appears twice"),
            "{m}"
        );
        let m = err(&format!("{BASE}[[series]]\nname = \"a\"\nchecksums = 5\n"));
        assert!(m.contains("checksums: only the checksum program"), "{m}");
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\n[[ratio]]\nnumerator = \"a\"\ndenominator = \"b\"\n"
        ));
        assert!(
            m.starts_with("x.toml:11: ratio: no series named 'b'"),
            "{m}"
        );
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nprogram = \"dns-cache\"\n"
        ));
        assert!(m.contains("not a DNS profile"), "{m}");
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nneighbour_checksums = 10\n"
        ));
        assert!(
            m.starts_with("x.toml:9: neighbour_checksums: a busy neighbour"),
            "{m}"
        );
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nsource = \"dnsperf\"\n"
        ));
        assert!(
            m.contains("profile: dnsperf needs a DNS profile") || m.contains("source:"),
            "{m}"
        );
    }

    #[test]
    fn a_frame_size_sweep_defaults_to_the_rfc_2544_sizes_and_is_checked_against_the_profile() {
        let sweep = |extra: &str, prof: &str| {
            format!(
                "{}[sweep]\nparameter = \"frame_size\"\n{extra}[[series]]\nname = \"a\"\n",
                BASE.replace("min-multi-flow", prof)
            )
        };
        let e = Experiment::from_toml(&sweep("", "min-multi-flow"), "x.toml").unwrap();
        assert_eq!(e.parameter, Param::FrameSize);
        assert_eq!(
            e.values,
            vec![64.0, 128.0, 256.0, 512.0, 1024.0, 1280.0, 1518.0]
        );
        assert_eq!(e.plan(true).values, e.values);
        assert_eq!(
            e.parameter.label(),
            "frame size [bytes on the wire, FCS included]"
        );
        // Outside 64..1518, or not whole bytes.
        let m = err(&sweep("values = [64, 1519]\n", "min-multi-flow"));
        assert_eq!(
            m,
            "x.toml:9: sweep.values: frame size 1519 is impossible (whole bytes on the wire, FCS included, 64 to 1518)"
        );
        let m = err(&sweep("values = [63]\n", "min-multi-flow"));
        assert!(
            m.starts_with("x.toml:9: sweep.values: frame size 63"),
            "{m}"
        );
        let m = err(&sweep("values = [100.5]\n", "min-multi-flow"));
        assert!(m.contains("impossible"), "{m}");
        // Below the profile's smallest frame (syn-flood: 78 bytes): the profile's
        // own check, on the line of the values, or of the parameter when defaulted.
        let m = err(&sweep("values = [64, 128]\n", "syn-flood"));
        assert_eq!(
            m,
            "x.toml:9: sweep.values: 64 bytes does not fit profile syn-flood: its frames take 78 to 1518 bytes (FCS included)"
        );
        let m = err(&sweep("", "syn-flood"));
        assert!(
            m.starts_with("x.toml:8: sweep.parameter: 64 bytes does not fit profile syn-flood"),
            "{m}"
        );
        let m = err(&sweep(
            "values = [128]\n[quick]\nvalues = [64]\n",
            "syn-flood",
        ));
        assert!(m.starts_with("x.toml:11: quick.values: 64 bytes"), "{m}");
        let e =
            Experiment::from_toml(&sweep("values = [78, 1518]\n", "syn-flood"), "x.toml").unwrap();
        assert_eq!(e.values, vec![78.0, 1518.0]);
        // A DNS profile's frames are its queries.
        let t = sweep("values = [512]\n", "dns-small").replace("\"drop\"", "\"dns-cache\"");
        let m = err(&t);
        assert!(
            m.starts_with("x.toml:4: profile: 'dns-small' is a DNS profile"),
            "{m}"
        );
        // Only frame_size has default values.
        let m = err(&format!(
            "{BASE}[sweep]\nparameter = \"queues\"\n[[series]]\nname = \"a\"\n"
        ));
        assert!(
            m.starts_with("x.toml:8: sweep.values: give the values of queues"),
            "{m}"
        );
        // Only gen takes a frame size.
        let m = err(&sweep("values = [64]\n", "min-multi-flow")
            .replace("name = \"a\"\n", "name = \"a\"\nsource = \"trafgen\"\n"));
        assert!(
            m.starts_with("x.toml:11: sweep.parameter: only gen's traffic"),
            "{m}"
        );
    }

    #[test]
    fn the_allow_list_belongs_to_syn_filter_and_takes_prefixes() {
        let t = BASE
            .replace("\"drop\"", "\"syn-filter\"")
            .replace("min-multi-flow", "syn-flood");
        let e = Experiment::from_toml(
            &format!(
                "{t}allow = [\"198.18.0.0/24\"]\n[[series]]\nname = \"a\"\n[[series]]\nname = \"b\"\nallow = [\"10.0.0.0/8\", \"192.0.2.1\"]\n"
            ),
            "x.toml",
        )
        .unwrap();
        assert_eq!(e.series[0].program.as_deref(), Some("syn-filter"));
        assert_eq!(e.series[0].allow, vec!["198.18.0.0/24".to_owned()]);
        assert_eq!(e.series[1].allow, vec!["10.0.0.0/8", "192.0.2.1"]);
        // IPv6 prefixes and addresses too, beside IPv4 ones.
        let e = Experiment::from_toml(
            &format!(
                "{t}allow = [\"2001:db8::/32\", \"198.18.0.0/24\", \"2001:db8::1\"]\n[[series]]\nname = \"a\"\n"
            ),
            "x.toml",
        )
        .unwrap();
        assert_eq!(
            e.series[0].allow,
            vec!["2001:db8::/32", "198.18.0.0/24", "2001:db8::1"]
        );
        let m = err(&format!(
            "{t}[[series]]\nname = \"a\"\nallow = [\"2001:db8::/129\"]\n"
        ));
        assert_eq!(
            m,
            "x.toml:9: allow: '2001:db8::/129' is not an IPv6 prefix: use ADDR/LEN, e.g. 2001:db8::/32"
        );
        let m = err(&format!(
            "{t}[[series]]\nname = \"a\"\nallow = [\"198.18.0.0/33\"]\n"
        ));
        assert_eq!(
            m,
            "x.toml:9: allow: '198.18.0.0/33' is not an IPv4 prefix: use A.B.C.D/LEN, e.g. 198.18.0.0/24"
        );
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nallow = [\"198.18.0.0/24\"]\n"
        ));
        assert_eq!(
            m,
            "x.toml:9: allow: only the syn-filter program takes an allow-list"
        );
        let m = err(&format!(
            "{t}[[series]]\nname = \"a\"\nallow = \"198.18.0.0/24\"\n"
        ));
        assert!(m.starts_with("x.toml:9: series.allow: invalid type"), "{m}");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let m = err("name = \"t\"\nduration = \n");
        assert!(m.starts_with("x.toml:2: syntax:"), "{m}");
        let m = err("name = \"t\"\n");
        assert!(
            m.starts_with("x.toml:1: duration:") || m.contains("missing field"),
            "{m}"
        );
    }

    #[test]
    fn unknown_names_list_the_shipped_ones() {
        let e = Experiment::load("no-such-experiment")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("drop-rate") && e.contains("no-such-experiment"),
            "{e}"
        );
    }

    #[test]
    fn units_are_the_command_lines_and_bad_ones_name_their_line() {
        let e = Experiment::from_toml(
            &format!(
                "{}rate = \"5Gbit\"\n[quick]\nduration = \"500ms\"\n[[series]]\nname = \"a\"\n[[series]]\nname = \"b\"\nrate = \"1.5M\"\nonly_dst = \"198.18.0.0/24\"\n",
                BASE.replace("\"2s\"", "\"2m\"")
            ),
            "x.toml",
        )
        .unwrap();
        assert_eq!(e.duration, Duration::from_secs(120));
        assert_eq!(e.quick_duration, Duration::from_millis(500));
        assert_eq!(e.series[0].rate, Some(Rate::Bits(5e9)));
        assert_eq!(e.series[1].rate, Some(Rate::Pps(1.5e6)));
        assert_eq!(e.series[1].only_dst.as_deref(), Some("198.18.0.0/24"));
        let m = err(&format!("{BASE}[[series]]\nname = \"a\"\nrate = \"5Gb\"\n"));
        assert_eq!(
            m,
            "x.toml:9: rate: rate `5Gb`: unknown unit `Gb` (use k, M, G for packets/s or kbit, Mbit, Gbit)"
        );
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nonly_dst = \"198.18.0.0/33\"\n"
        ));
        assert_eq!(
            m,
            "x.toml:9: only_dst: '198.18.0.0/33' is not an IPv4 prefix: use A.B.C.D/LEN, e.g. 198.18.0.0/24"
        );
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\ndst_ip = \"10.1\"\n"
        ));
        assert_eq!(m, "x.toml:9: dst_ip: '10.1' is not an IPv4 address");
        // A number where a string belongs: the line and the key, not just "syntax".
        let m = err(&format!(
            "{BASE}[[series]]\nname = \"a\"\nqueues = \"two\"\n"
        ));
        assert!(
            m.starts_with("x.toml:9: series.queues: invalid type"),
            "{m}"
        );
        let m = err(&format!("{BASE}[[series]]\nname = \"a\"\nspeed = 3\n"));
        assert!(
            m.starts_with("x.toml:9: speed: unknown key in [series] (allowed: name, measure,"),
            "{m}"
        );
    }
}
