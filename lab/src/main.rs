//! `lab`: command-line front end of the virtual testbed. Parses arguments and
//! calls the library; all logic lives in `lib.rs` and its modules.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lab::{DEFAULT_NAME, Testbed, Topology, UpOptions};

/// Virtual testbed of network namespaces and veth pairs: generator, switch
/// with a mirror port, DUT and monitor.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a lab (fails if one of that name exists).
    Up {
        /// Lab name: namespaces are NAME-gen, NAME-sw, NAME-dut, NAME-mon.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// TX/RX queues on the generator and DUT veths (1-64).
        #[arg(long, default_value_t = 1)]
        queues: u32,
        /// switched: gen - switch (mirror to mon) - dut; direct: gen - dut.
        #[arg(long, value_enum, default_value_t = Topology::Switched)]
        topology: Topology,
    },
    /// Show a lab, read from the system.
    Status {
        /// Lab name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a lab: all its namespaces and interfaces (also a half-built one).
    Down {
        /// Lab name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Up {
            name,
            queues,
            topology,
        } => {
            let opts = UpOptions {
                name: name.clone(),
                topology,
                queues,
            };
            let mut bed =
                Testbed::up(&opts).with_context(|| format!("lab up --name {name}"))?;
            bed.keep();
            println!("{}", bed.status());
        }
        Cmd::Status { name, json } => {
            let bed = Testbed::attach(&name).with_context(|| format!("lab status --name {name}"))?;
            let status = bed.status();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).context("serialise status")?
                );
            } else {
                println!("{status}");
            }
        }
        Cmd::Down { name } => {
            let removed = lab::down(&name).with_context(|| format!("lab down --name {name}"))?;
            println!("removed {}", removed.join(", "));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
