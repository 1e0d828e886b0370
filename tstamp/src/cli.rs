//! The `tstamp` command line and its two drivers: live capture through sink's back ends
//! and offline reading of pcap/pcapng files. Both feed one [`Session`] and write the
//! same outputs; Ctrl-C, SIGTERM or the end of `--duration` still write everything.

use std::path::PathBuf;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use profiles::units::parse_duration;
use sink::capture::{self, Backend, CaptureOptions, ClockMode};
use sink::stop::Stop;

use crate::matcher::MatchMode;
use crate::output::{AtomicFile, write_hist_csv, write_svg};
use crate::session::{FinalRecord, IntervalRecord, Session, SessionOptions};
use crate::stats::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatchArg {
    Dns,
    Seq,
}

/// `--output`.
pub use records::cli::TextJson as OutputArg;

/// Response times on a mirror port: match requests and responses, report distributions.
#[derive(Debug, Parser)]
#[command(name = "tstamp", version = buildinfo::VERSION)]
pub struct Args {
    /// Capture live on this interface (root).
    #[arg(long, conflicts_with = "read", required_unless_present = "read")]
    pub iface: Option<String>,
    /// Read a pcap or pcapng file instead of capturing.
    #[arg(long)]
    pub read: Option<PathBuf>,
    /// How requests and responses are paired.
    #[arg(long = "match", value_enum, default_value = "dns")]
    pub match_mode: MatchArg,
    /// Live capture back end.
    #[arg(long, value_enum, default_value = "af-packet")]
    pub backend: Backend,
    /// Timestamp clock for live capture: NIC hardware, kernel software, or hw when the NIC has it.
    #[arg(long, value_enum, default_value = "auto")]
    pub clock: ClockMode,
    /// Stop after this long (live) or after this much capture time (offline).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// A request unanswered for this long is lost.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub timeout: Duration,
    /// Interval of the per-interval records.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub interval: Duration,
    /// Answered requests are remembered this long (at most --timeout) so that a second
    /// response counts as a duplicate; later ones count as unmatched.
    #[arg(long, value_parser = parse_duration, default_value = "10ms")]
    pub dup_window: Duration,
    /// Most requests waiting for an answer; beyond it the oldest is evicted (counted).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_pending: usize,
    #[command(flatten)]
    pub output: records::cli::OutputOpt<OutputArg>,
    #[command(flatten)]
    pub stop_opt: records::cli::StopOpt,
    /// HDR histogram interval log (V2, deflate), one histogram per interval.
    #[arg(long)]
    pub hdrh: Option<PathBuf>,
    /// Histogram of all response times as `value,count` (ns).
    #[arg(long)]
    pub hist_csv: Option<PathBuf>,
    /// SVG with the response-time percentile distribution (log axes, x = 1/(1-p)) and the percentiles over time.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// AF_XDP: replace a foreign XDP program on the interface (restored on exit).
    #[arg(long)]
    pub force: bool,
    /// Enter this network namespace (/run/netns/NAME) first.
    #[arg(long)]
    pub netns: Option<String>,
}

/// One line to stdout; a closed pipe (`| head`) is not an error worth dying for.
fn out(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

use xdplayer::clock::realtime_ns;

fn us(v: Option<u64>) -> String {
    v.map(|v| format!("{:.1}", v as f64 / 1e3))
        .unwrap_or_else(|| "-".into())
}

fn text_interval(r: &IntervalRecord) -> String {
    format!(
        "t={:7.2}s req {} resp {} matched {} lost {} dup {} drops {} | rtt µs p50 {} p99 {} p99.9 {} max {}",
        r.t,
        r.requests,
        r.responses,
        r.matched,
        r.lost,
        r.duplicates,
        r.capture_drops,
        us(r.rtt_ns.p50),
        us(r.rtt_ns.p99),
        us(r.rtt_ns.p99_9),
        us(r.rtt_ns.max)
    )
}

fn text_summary(s: &Summary) -> String {
    format!(
        "min {} mean {} stddev {} p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {} (µs, {} samples)",
        us(s.min),
        s.mean
            .map(|v| format!("{:.1}", v / 1e3))
            .unwrap_or_else(|| "-".into()),
        s.stddev
            .map(|v| format!("{:.1}", v / 1e3))
            .unwrap_or_else(|| "-".into()),
        us(s.p50),
        us(s.p90),
        us(s.p99),
        us(s.p99_9),
        us(s.p99_99),
        us(s.max),
        s.count
    )
}

fn text_final(f: &FinalRecord) -> String {
    let mut s = format!(
        "{} ({} clock, match {}): {} frames, {} requests, {} responses, {} matched, {} lost, {} unmatched responses, {} duplicates, {} evicted, {} capture drops\nresponse time: {}\n",
        f.source,
        f.clock,
        f.match_mode,
        f.frames,
        f.requests,
        f.responses,
        f.matched,
        f.lost,
        f.unmatched_responses,
        f.duplicates,
        f.evicted,
        f.capture_drops,
        text_summary(&f.rtt_ns)
    );
    if let Some(p) = &f.port {
        s.push_str(&format!(
            "port: {} frames received, {} dropped by the interface (the capture read {}, dropped {})\n",
            p.rx_packets, p.rx_dropped, f.frames, f.capture_drops
        ));
    }
    if !f.rcodes.is_empty() {
        let rc: Vec<String> = f.rcodes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        s.push_str(&format!("rcodes: {}\n", rc.join(", ")));
    }
    if !f.streams.is_empty() {
        s.push_str("probe streams as their responses came back (jitter of the response time):\n");
        for line in sink::streams::text_lines(&f.streams) {
            s.push_str(&format!("  {line}\n"));
        }
    }
    let k = &f.skipped;
    s.push_str(&format!(
        "skipped: {} malformed, {} not IP, {} not UDP, {} not DNS/probe{}",
        k.malformed,
        k.not_ip,
        k.not_udp,
        k.not_dns_or_probe,
        if f.capture_truncated {
            "; the capture file was cut short"
        } else {
            ""
        }
    ));
    s
}

/// Runs `tstamp`; returns the final record (also printed).
pub fn run(args: &Args) -> Result<FinalRecord> {
    if let Some(ns) = &args.netns {
        xdplayer::netns::enter(ns)?;
    }
    if args.interval.is_zero() {
        bail!("--interval must be positive");
    }
    xdplayer::stop::stop_on_stdin_eof(args.stop_opt.stop_on_stdin_eof);
    let stop = Stop::on_signals();
    // Create every output first: an unwritable path fails before any capture.
    let open = |p: &Option<PathBuf>, what: &str| -> Result<Option<AtomicFile>> {
        p.as_ref()
            .map(|p| {
                AtomicFile::create(p)
                    .with_context(|| format!("cannot write {what} file {}", p.display()))
            })
            .transpose()
    };
    let mut hdr_file = open(&args.hdrh, "HDR histogram log")?;
    let csv_file = open(&args.hist_csv, "histogram CSV")?;
    let svg_file = open(&args.plot, "plot")?;
    if svg_file.is_some() {
        crate::output::load_font().context("--plot")?;
    }

    let opts = SessionOptions {
        mode: match args.match_mode {
            MatchArg::Dns => MatchMode::Dns,
            MatchArg::Seq => MatchMode::Seq,
        },
        timeout_ns: args.timeout.as_nanos() as u64,
        max_pending: args.max_pending,
        interval_ns: args.interval.as_nanos() as u64,
        dup_window_ns: args.dup_window.as_nanos() as u64,
    };
    let json = args.output.format == OutputArg::Json;

    // Live: open the capture before anything is printed (bad interface, no root, no hw clock).
    let mut live = match &args.iface {
        Some(iface) => {
            let cap = capture::open(
                args.backend,
                &CaptureOptions {
                    iface: iface.clone(),
                    clock: args.clock,
                    force: args.force,
                    ..CaptureOptions::default()
                },
            )
            .with_context(|| format!("live capture on {iface}"))?;
            Some(cap)
        }
        None => None,
    };
    let start_ns = live.as_ref().map(|_| realtime_ns());
    let mut session = Session::new(opts, start_ns);

    let mut ser = V2DeflateSerializer::new();
    let mut log = match hdr_file.as_mut() {
        Some(a) => {
            let base = UNIX_EPOCH + Duration::from_nanos(start_ns.unwrap_or(0));
            let mut b = IntervalLogWriterBuilder::new();
            b.add_comment("tstamp response times in ns");
            if start_ns.is_some() {
                b.with_start_time(base).with_base_time(base);
            }
            Some(
                b.begin_log_with(a.writer(), &mut ser)
                    .context("writing the HDR log header")?,
            )
        }
        None => None,
    };
    let mut base_offset_ns: Option<u64> = start_ns.map(|_| 0);
    let mut write_err: Option<String> = None;
    let mut emit = |r: &IntervalRecord, h: &Histogram<u64>| {
        if let Some(l) = log.as_mut() {
            // Offline logs have no StartTime: interval start times are absolute.
            let off = *base_offset_ns.get_or_insert(0);
            let st = Duration::from_nanos(off + r.start_offset_ns);
            if let Err(e) = l.write_histogram(h, st, Duration::from_nanos(r.length_ns), None)
                && write_err.is_none()
            {
                write_err = Some(format!("{e:?}"));
            }
        }
        if json {
            if let Ok(s) = serde_json::to_string(&r.record) {
                out(&s);
            }
        } else {
            out(&text_interval(r));
        }
    };

    let mut port_delta: Option<xdplayer::iface::DevStats> = None;
    let (clock, source, end_ns, truncated) = match live.as_mut() {
        Some(cap) => {
            let clock = cap.clock().as_str();
            if json {
                let ready = records::tstamp::Ready {
                    kind: records::Kind::Ready,
                    schema_version: records::SCHEMA_VERSION,
                    iface: args.iface.clone(),
                    backend: cap.backend().to_owned(),
                    clock: clock.to_owned(),
                    match_mode: session_mode(args).to_owned(),
                };
                out(&serde_json::to_string(&ready).unwrap_or_default());
            } else {
                eprintln!(
                    "tstamp: capturing on {} ({}, {} clock); Ctrl-C to stop",
                    args.iface.as_deref().unwrap_or(""),
                    cap.backend(),
                    clock
                );
            }
            if cap.backend() == "af-xdp" {
                eprintln!(
                    "tstamp: note: af-xdp stamps frames in user space per RX batch (no XDP RX timestamp metadata yet): response times are coarse; use --backend af-packet for them"
                );
            }
            let t0 = Instant::now();
            let port0 = args
                .iface
                .as_deref()
                .and_then(|i| xdplayer::iface::dev_stats(i).ok());
            let mut last: Option<(u64, Instant)> = None;
            loop {
                if stop.is_set() || args.duration.is_some_and(|d| t0.elapsed() >= d) {
                    break;
                }
                let res = cap.poll(Duration::from_millis(50), &mut |fr| {
                    session.on_frame(fr.ts_ns, fr.data, &mut emit);
                    last = Some((fr.ts_ns, Instant::now()));
                });
                if let Err(e) = res {
                    eprintln!("error: {e}");
                    break;
                }
                let d = cap.drops();
                session.set_capture_drops(d.kernel + d.ring);
                let now = match (clock, last) {
                    ("sw", _) | (_, None) => realtime_ns(),
                    (_, Some((ts, at))) => ts + at.elapsed().as_nanos() as u64,
                };
                session.tick(now, &mut emit);
            }
            let d = cap.drops();
            session.set_capture_drops(d.kernel + d.ring);
            port_delta = port0
                .zip(
                    args.iface
                        .as_deref()
                        .and_then(|i| xdplayer::iface::dev_stats(i).ok()),
                )
                .map(|(a, b)| b.since(a));
            let end = match (clock, last) {
                ("sw", _) | (_, None) => realtime_ns(),
                (_, Some((ts, at))) => ts + at.elapsed().as_nanos() as u64,
            };
            (
                clock.to_string(),
                args.iface.clone().unwrap_or_default(),
                Some(end),
                false,
            )
        }
        None => {
            let path = args.read.clone().unwrap_or_default();
            let limit = args.duration.map(|d| d.as_nanos() as u64);
            let mut first: Option<u64> = None;
            let mut n = 0u64;
            let st = crate::reader::read(&path, |ts, data| {
                let f = *first.get_or_insert(ts);
                if limit.is_some_and(|l| ts.saturating_sub(f) >= l) {
                    return false;
                }
                session.on_frame(ts, data, &mut emit);
                n += 1;
                // Check the stop flag now and then, not per packet.
                n & 0xffff != 0 || !stop.is_set()
            })?;
            if st.truncated {
                eprintln!(
                    "warning: {} ends in the middle of a record; using the {} packets before it",
                    path.display(),
                    st.packets
                );
            }
            (
                String::from("file"),
                path.display().to_string(),
                None,
                st.truncated,
            )
        }
    };
    let mut fin = session.finish(&clock, &source, end_ns, truncated, &mut emit);
    fin.port = port_delta.map(|d| records::tstamp::PortCounters {
        rx_packets: d.rx_packets,
        rx_dropped: d.rx_dropped,
    });
    drop(log);
    if let Some(e) = write_err {
        bail!("writing the HDR log: {e}");
    }
    if json {
        out(&serde_json::to_string(&fin).context("serialising the final record")?);
    } else {
        out(&text_final(&fin));
    }
    if let Some(a) = hdr_file {
        let p = args.hdrh.clone().unwrap_or_default();
        a.commit()
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(mut a) = csv_file {
        let p = args.hist_csv.clone().unwrap_or_default();
        write_hist_csv(a.writer(), &session.total.hist)
            .with_context(|| format!("writing {}", p.display()))?;
        a.commit()
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(mut a) = svg_file {
        let p = args.plot.clone().unwrap_or_default();
        write_svg(a.writer(), &source, &session.total.hist, &session.timeline)
            .with_context(|| format!("writing {}", p.display()))?;
        a.commit()
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(fin)
}

fn session_mode(args: &Args) -> &'static str {
    match args.match_mode {
        MatchArg::Dns => "dns",
        MatchArg::Seq => "seq",
    }
}

#[cfg(test)]
mod builder_tests {
    use super::*;
    use records::args::{Tstamp, TstampMatch};

    #[test]
    fn the_builder_round_trips_through_tstamps_own_parser() {
        let b = Tstamp {
            netns: Some("lab-mon".into()),
            iface: "mon0".into(),
            match_mode: TstampMatch::Seq,
            duration: Some(Duration::from_millis(1500)),
            hdrh: Some(PathBuf::from("/tmp/x.hdr")),
            hist_csv: Some(PathBuf::from("/tmp/x.csv")),
            plot: Some(PathBuf::from("/tmp/x.svg")),
            json: true,
        };
        let mut argv = vec!["tstamp".to_owned()];
        argv.extend(b.argv());
        let a = Args::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert_eq!(a.netns, b.netns);
        assert_eq!(a.iface.as_deref(), Some("mon0"));
        assert!(matches!(a.match_mode, MatchArg::Seq));
        assert_eq!(a.duration, b.duration);
        assert_eq!((a.hdrh, a.hist_csv, a.plot), (b.hdrh, b.hist_csv, b.plot));
        assert!(matches!(a.output.format, OutputArg::Json));
        let d = Tstamp {
            iface: "mon0".into(),
            ..Tstamp::default()
        };
        let mut argv = vec!["tstamp".to_owned()];
        argv.extend(d.argv());
        let a = Args::try_parse_from(&argv).expect("defaults");
        assert!(
            matches!(a.match_mode, MatchArg::Dns) && matches!(a.output.format, OutputArg::Text)
        );
    }

    #[test]
    fn json_is_output_json() {
        let p = |v: &[&str]| {
            Args::try_parse_from(["tstamp", "--iface", "mon0"].iter().chain(v))
                .map(|a| a.output.format)
        };
        assert_eq!(p(&["--json"]).expect("--json"), OutputArg::Json);
        assert_eq!(
            p(&["--output", "json"]).expect("--output json"),
            OutputArg::Json
        );
        assert_eq!(p(&[]).expect("default"), OutputArg::Text);
        assert!(p(&["--json", "--output", "text"]).is_err());
        assert!(
            p(&["--output", "csv"]).is_err(),
            "tstamp writes CSV files, not CSV output"
        );
    }
}
