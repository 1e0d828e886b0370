//! `dut`: install the DUT programs at an execution point, read their counters
//! and cost, remove them, benchmark map updates. The operations are in
//! `dut_programs::ops`, the command line in `dut_programs::cli`.
use clap::Parser;

fn main() {
    let args = dut_programs::cli::Args::parse();
    if let Err(e) = dut_programs::cli::run(args) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
