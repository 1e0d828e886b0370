//! `tstamp-synth`: writes a synthetic DNS capture with known response times (a dev and
//! benchmark tool): `tstamp-synth OUT.pcap|OUT.pcapng --pairs N [--gap-ns G]
//! [--lose-every K] [--us]`.
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use tstamp::synth::{Workload, write_pcap, write_pcapng};

#[derive(Debug, Parser)]
#[command(name = "tstamp-synth", version = buildinfo::VERSION)]
struct Args {
    /// Output file; `.pcapng` writes pcapng, anything else classic pcap.
    out: PathBuf,
    #[arg(long, default_value_t = 1_000_000)]
    pairs: u64,
    /// Time between queries (ns).
    #[arg(long, default_value_t = 1_000)]
    gap_ns: u64,
    /// Leave every K-th query unanswered (0 = none).
    #[arg(long, default_value_t = 0)]
    lose_every: u64,
    /// Classic pcap with microsecond timestamps (default nanoseconds).
    #[arg(long)]
    us: bool,
}

fn run(a: &Args) -> Result<()> {
    let w = Workload {
        pairs: a.pairs,
        t0_ns: 1_700_000_000_000_000_000,
        gap_ns: a.gap_ns,
        lose_every: a.lose_every,
    };
    let mut file = xdplayer::atomic_file::AtomicFile::create(&a.out)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    {
        let bw = BufWriter::with_capacity(1 << 20, file.writer());
        if a.out.extension().is_some_and(|e| e == "pcapng") {
            write_pcapng(bw, |f| w.for_each(f))?;
        } else {
            write_pcap(bw, !a.us, |f| w.for_each(f))?;
        }
    }
    file.commit()
        .with_context(|| format!("writing {}", a.out.display()))?;
    Ok(())
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
