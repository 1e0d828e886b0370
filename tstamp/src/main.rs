//! `tstamp` binary: parse arguments, run, map the result to an exit code.
use clap::Parser;

fn main() {
    let args = tstamp::cli::Args::parse();
    if let Err(e) = tstamp::cli::run(&args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
