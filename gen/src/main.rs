//! `gen`: command line over the `xgen` library (see `gen/README.md`).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use xgen::cli::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn real_main(a: Args) -> anyhow::Result<()> {
    if let Some(ns) = &a.netns {
        xgen::net::enter_netns(ns)?;
    }
    xgen::net::ensure_bpffs();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler: {e}"))?;
    }
    let o = a.options();
    xgen::run(&o, stop, std::io::stdout().lock())?;
    Ok(())
}
