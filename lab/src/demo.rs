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
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::runner::{self, InstallOptions};
use crate::store::write_atomic;
use records::generator::Final as GenFinal;
use records::tstamp::Final as TstampFinal;

use crate::remote::{self, Site};
use crate::testbed_file::TestbedFile;
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
    /// Run on the hosts of this testbed file (over ssh) instead of a local lab.
    pub testbed: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            name: "demo".into(),
            out: PathBuf::from("demo-out"),
            rate: "50k".into(),
            duration: "5s".into(),
            profile: "dns-small".into(),
            testbed: None,
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

/// Where the demo runs: a local lab, or the hosts of a testbed file.
struct Place {
    /// The local lab (torn down when dropped).
    bed: Option<Testbed>,
    /// The ssh session (control masters stopped when dropped).
    _ssh: Option<std::sync::Arc<remote::Ssh>>,
    gen_site: Site,
    gen_iface: String,
    /// gen's addresses where the testbed file gives them (src, dst IP, dst MAC).
    addresses: (Option<Ipv4Addr>, Option<Ipv4Addr>, Option<[u8; 6]>),
    dut: runner::DutPort,
    mon_site: Site,
    mon_iface: String,
}

/// Builds the local switched lab `name`.
fn local_lab(name: &str) -> Result<Place> {
    testbed::binaries::locate("gen")?;
    testbed::binaries::locate("dut")?;
    testbed::binaries::locate("tstamp")?;
    crate::registry::reap_and_report("lab demo");
    eprintln!("demo: building the switched lab '{name}'");
    let bed = Testbed::up(&UpOptions {
        name: name.to_owned(),
        topology: Topology::Switched,
        queues: 1,
    })
    .context("lab up")?;
    let lab = bed.name().to_owned();
    Ok(Place {
        gen_site: Site::local(testbed::gen_netns(&lab)),
        gen_iface: testbed::GEN_IFACE.to_owned(),
        addresses: (None, None, None),
        dut: runner::DutPort::of_lab(&lab),
        mon_site: Site::local(testbed::mon_netns(&lab)),
        mon_iface: testbed::MON_IFACE.to_owned(),
        bed: Some(bed),
        _ssh: None,
    })
}

/// The hosts of testbed file `path`, checked (pre-flight) before any traffic.
fn remote_hosts(path: &Path) -> Result<Place> {
    let file = TestbedFile::load(path)?;
    if file.mon.is_none() {
        bail!(
            "{}: the demo measures response times on the mirror port: give a [mon] host",
            file.origin
        );
    }
    let ssh = remote::Ssh::new(&file)?;
    eprintln!(
        "demo: pre-flight of {} host(s) in {}",
        file.endpoints().len(),
        file.origin
    );
    let hosts = remote::preflight(&ssh, &file)?;
    let g = remote::host(&hosts, "gen[0]")?;
    let d = remote::host(&hosts, "dut")?;
    let m = remote::host(&hosts, "mon")?;
    Ok(Place {
        bed: None,
        gen_iface: g.endpoint.iface.clone(),
        addresses: (g.endpoint.ip, d.endpoint.ip, d.endpoint.mac),
        gen_site: Site::Remote(g.clone()),
        dut: runner::DutPort {
            site: Site::Remote(d.clone()),
            iface: d.endpoint.iface.clone(),
        },
        mon_iface: m.endpoint.iface.clone(),
        mon_site: Site::Remote(m.clone()),
        _ssh: Some(ssh),
    })
}

/// Runs the demo.
pub fn run(opts: &DemoOptions) -> Result<DemoResult> {
    let duration =
        profiles::units::parse_duration(&opts.duration).map_err(|e| anyhow!("--duration: {e}"))?;
    let rate = profiles::units::parse_rate(&opts.rate).map_err(|e| anyhow!("--rate: {e}"))?;
    profiles::Profile::load(&opts.profile).map_err(|e| anyhow!("--profile: {e}"))?;
    tools::install_ctrlc()?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("create {}", opts.out.display()))?;
    let out = &opts.out;
    let place = match &opts.testbed {
        None => local_lab(&opts.name)?,
        Some(f) => remote_hosts(f)?,
    };
    let remote = place.bed.is_none();

    eprintln!(
        "demo: installing dns-cache on {}, filled from {}",
        place.dut, opts.profile
    );
    // A remote DUT runs in the foreground until we close its connection.
    let dut_child = runner::install(
        &place.dut,
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

    eprintln!(
        "demo: starting tstamp on {} in {}",
        place.mon_iface, place.mon_site
    );
    // The output files are written where tstamp runs: here only for a local lab.
    let files = if remote {
        Vec::new()
    } else {
        vec![
            ("--hdrh", out.join("rtt.hdr")),
            ("--hist-csv", out.join("rtt-histogram.csv")),
            ("--plot", out.join("rtt.svg")),
        ]
    };
    let ts =
        runner::start_tstamp_at(&place.mon_site, &place.mon_iface, &files)?.context("tstamp")?;

    eprintln!(
        "demo: gen sends {} queries/s for {}",
        opts.rate, opts.duration
    );
    let (src_ip, dst_ip, dst_mac) = place.addresses;
    let b = records::args::Gen {
        netns: place.gen_site.netns(),
        iface: place.gen_iface.clone(),
        profile: opts.profile.clone(),
        rate: Some(rate),
        duration: Some(duration),
        src_ip: src_ip.map(std::net::IpAddr::V4),
        dst_ip,
        dst_mac,
        json: true,
        ..records::args::Gen::default()
    };
    let gen_out = place.gen_site.run("gen", &b.argv());
    runner::sleep_checked(Duration::from_millis(300)).ok();
    let ts_out = ts.stop(Duration::from_secs(5))?;
    write_atomic(&out.join("tstamp.json"), ts_out.stdout().as_bytes())?;
    let gen_out = gen_out?;
    write_atomic(&out.join("gen.json"), gen_out.stdout().as_bytes())?;
    let interrupted = tools::stop_requested();
    if !interrupted {
        gen_out.check()?;
    }
    let status = runner::dut_status(&place.dut)?;
    if let Some(d) = dut_child {
        // Closing its connection removes the program (a local one goes with the lab).
        let d = d.stop(Duration::from_secs(10))?;
        write_atomic(
            &out.join("dut-install.txt"),
            format!("{}\n{}{}", d.command, d.stdout(), d.stderr).as_bytes(),
        )?;
    }
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
    drop(place);
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
