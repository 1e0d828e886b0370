//! `lab demo`: the whole chain once, on a fresh switched lab, in well under a
//! minute: the DNS cache on the DUT filled from `dns-small`, `tstamp` on the
//! mirror port, `gen` sending 50 k queries/s for 5 s (a rate the switched lab
//! carries without loss on a small machine), then a report and the plots.
//!
//! The lab (named `demo` unless told otherwise; an existing lab of that name
//! is refused, never reused or removed) is torn down on every way out:
//! success, error, and Ctrl-C (the handler interrupts the tools; the
//! `Testbed` and `Child` guards clean up as the stack unwinds).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use crate::runner::{self, InstallOptions};
use crate::store::write_atomic;
use records::generator::Final as GenFinal;
use records::tstamp::Final as TstampFinal;

use crate::tools;
use records::dut::Attached;
use testbed::{Testbed, Topology, UpOptions};

/// Options of `lab demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Lab name.
    pub name: String,
    /// Output directory.
    pub out: PathBuf,
    /// Offered rate (gen `--rate`).
    pub rate: String,
    /// Traffic duration (gen `--duration`).
    pub duration: String,
    /// Profile.
    pub profile: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            name: "demo".into(),
            out: PathBuf::from("demo-out"),
            rate: "50k".into(),
            duration: "5s".into(),
            profile: "dns-small".into(),
        }
    }
}

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoResult {
    /// gen's final record.
    pub gen_final: GenFinal,
    /// tstamp's final record.
    pub tstamp_final: TstampFinal,
    /// The printed report.
    pub report: String,
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Ctrl-C ended the traffic early (the report covers what ran).
    pub interrupted: bool,
}

/// Runs the demo.
pub fn run(opts: &DemoOptions) -> Result<DemoResult> {
    let gen_bin = testbed::binaries::locate("gen")?;
    testbed::binaries::locate("dut")?;
    testbed::binaries::locate("tstamp")?;
    let duration =
        profiles::units::parse_duration(&opts.duration).map_err(|e| anyhow!("--duration: {e}"))?;
    let rate = profiles::units::parse_rate(&opts.rate).map_err(|e| anyhow!("--rate: {e}"))?;
    profiles::Profile::load(&opts.profile).map_err(|e| anyhow!("--profile: {e}"))?;
    tools::install_ctrlc()?;
    crate::registry::reap_and_report("lab demo");
    std::fs::create_dir_all(&opts.out).with_context(|| format!("create {}", opts.out.display()))?;
    let out = &opts.out;

    eprintln!("demo: building the switched lab '{}'", opts.name);
    let bed = Testbed::up(&UpOptions {
        name: opts.name.clone(),
        topology: Topology::Switched,
        queues: 1,
    })
    .context("lab up")?;
    let lab = bed.name().to_owned();

    eprintln!(
        "demo: installing dns-cache on {}-dut/dut0, filled from {}",
        lab, opts.profile
    );
    runner::install(
        &runner::DutPort::of_lab(&lab),
        &InstallOptions {
            program: "dns-cache",
            mode: "native",
            profile: Some(&opts.profile),
            checksums: None,
            only_dst: None,
            allow: &[],
        },
        &out.join("dut-install.txt"),
    )?;

    eprintln!("demo: starting tstamp on {}-mon/mon0", lab);
    let ts = runner::start_tstamp(
        &lab,
        &[
            ("--hdrh", out.join("rtt.hdr")),
            ("--hist-csv", out.join("rtt-histogram.csv")),
            ("--plot", out.join("rtt.svg")),
        ],
    )?
    .context("tstamp")?;

    eprintln!(
        "demo: gen sends {} queries/s for {}",
        opts.rate, opts.duration
    );
    let b = records::args::Gen {
        netns: Some(testbed::gen_netns(&lab)),
        iface: testbed::GEN_IFACE.to_owned(),
        profile: opts.profile.clone(),
        rate: Some(rate),
        duration: Some(duration),
        json: true,
        ..records::args::Gen::default()
    };
    let mut g = std::process::Command::new(gen_bin);
    g.args(b.argv());
    let gen_out = tools::run(g);
    runner::sleep_checked(Duration::from_millis(300)).ok();
    let ts_out = ts.stop(Duration::from_secs(5))?;
    write_atomic(&out.join("tstamp.json"), ts_out.stdout().as_bytes())?;
    let gen_out = gen_out?;
    write_atomic(&out.join("gen.json"), gen_out.stdout().as_bytes())?;
    let interrupted = tools::stop_requested();
    if !interrupted {
        gen_out.check()?;
    }
    let status = runner::dut_status(&runner::DutPort::of_lab(&lab))?;
    let status_line = serde_json::to_string(&status).context("serialise dut's status")?;
    write_atomic(
        &out.join("dut-status.json"),
        format!("{status_line}\n").as_bytes(),
    )?;
    let gen_final: GenFinal = gen_out.final_as("gen final")?;
    let tstamp_final: TstampFinal = ts_out.final_as("tstamp final")?;

    let mut report = render(opts, &gen_final, &tstamp_final, &status);
    if interrupted {
        report.push_str("  (interrupted by Ctrl-C: results up to that moment)\n");
    }
    let mut md = format!("# lab demo\n\n```\n{report}```\n\n");
    let _ = writeln!(md, "![response times](rtt.svg)\n");
    let _ = writeln!(
        md,
        "Files: [gen.json](gen.json), [tstamp.json](tstamp.json), [dut-status.json](dut-status.json), [rtt.hdr](rtt.hdr) (HDR histogram log), [rtt-histogram.csv](rtt-histogram.csv)."
    );
    write_atomic(&out.join("summary.md"), md.as_bytes())?;
    drop(bed);
    let files = [
        "summary.md",
        "gen.json",
        "tstamp.json",
        "dut-status.json",
        "rtt.svg",
        "rtt.hdr",
        "rtt-histogram.csv",
    ]
    .iter()
    .map(|f| out.join(f))
    .filter(|p| p.exists())
    .collect();
    Ok(DemoResult {
        gen_final,
        tstamp_final,
        report,
        files,
        interrupted,
    })
}

fn us(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{:.1} us", x as f64 / 1e3))
}

/// The text report.
pub fn render(opts: &DemoOptions, g: &GenFinal, t: &TstampFinal, status: &Attached) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "lab demo: dns-cache ({}) on the DUT, {} queries/s for {}",
        opts.profile, opts.rate, opts.duration
    );
    let _ = writeln!(
        s,
        "  sent      {} queries (gen tx, confirmed by the kernel; {:.0} pps)",
        g.tx_packets, g.tx_pps
    );
    if let Some(sf) = &g.rate_shortfall {
        let _ = writeln!(s, "  RATE      {}", sf.line());
    }
    if let Some(c) = g.tx_check.as_ref().filter(|c| !c.agrees) {
        let _ = writeln!(
            s,
            "  CHECK     gen counted {} sent, {} counted {}",
            c.gen_tx, c.counter, c.interface_tx
        );
    }
    let _ = writeln!(
        s,
        "  answered  {} (gen rx), {} matched on the mirror port",
        g.rx_packets, t.matched
    );
    let _ = writeln!(
        s,
        "  lost      {} (requests seen on mon0 without an answer)",
        t.lost
    );
    let _ = writeln!(
        s,
        "  DUT       {} packets through dns-cache on dut0",
        status
            .counters
            .map_or_else(|| "?".into(), |c| c.packets.to_string())
    );
    let r = &t.rtt_ns;
    let _ = writeln!(
        s,
        "  response  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        us(r.p50),
        us(r.p90),
        us(r.p99),
        us(r.p99_9),
        us(r.max)
    );
    let _ = writeln!(
        s,
        "  clock     {} timestamps on the mirror port ({})",
        t.clock,
        if t.clock == "hw" {
            "NIC hardware"
        } else {
            "kernel software, SO_TIMESTAMPING"
        }
    );
    s
}

/// The output files a demo run leaves (for tests).
pub fn expected_files(out: &Path) -> Vec<PathBuf> {
    ["summary.md", "gen.json", "tstamp.json", "dut-status.json"]
        .iter()
        .map(|f| out.join(f))
        .collect()
}
