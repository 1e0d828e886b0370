//! `lab`: command-line front end of the virtual testbed. Parses arguments and
//! calls the library; all logic lives in `lib.rs` and its modules.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

use lab::experiment::Experiment;
use lab::{DEFAULT_NAME, Testbed, Topology, UpOptions};

/// Virtual testbed of network namespaces and veth pairs: generator, switch
/// with a mirror port, DUT and monitor.
#[derive(Debug, Parser)]
#[command(version = buildinfo::VERSION, about)]
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
    /// Show a lab, read from the system; without --name, list every lab on
    /// the machine with its owner and whether it is stale.
    Status {
        /// Lab name.
        #[arg(long)]
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a lab: all its namespaces and interfaces (also a half-built one).
    Down {
        /// Lab name.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// Instead: remove every stale lab (built by a `lab run`, `lab demo`
        /// or test whose process is gone), killing what still runs in it.
        #[arg(long, conflicts_with = "name")]
        stale: bool,
    },
    /// The whole chain once: DNS cache on the DUT, tstamp on the mirror port,
    /// gen at 50k queries/s for 5 s; prints the report, writes the plots,
    /// removes the lab.
    Demo {
        /// Lab name (refused if a lab of that name exists).
        #[arg(long, default_value = "demo")]
        name: String,
        /// Output directory.
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// Offered rate (queries/s: 50k, 1.5M, ...).
        #[arg(long, default_value = "50k")]
        rate: String,
        /// Traffic duration (5s, 500ms, 2m).
        #[arg(long, default_value = "5s")]
        duration: String,
        /// Workload profile (DNS).
        #[arg(long, default_value = "dns-small")]
        profile: String,
    },
    /// Run an experiment (a name in profiles/experiments/ or a path): CSVs,
    /// plots and a Markdown report in --out.
    Run {
        /// Experiment name or file.
        experiment: String,
        /// Output directory (default out/<experiment>-<UTC time>); a re-run
        /// with the same directory skips the points already measured.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A few seconds per point, 1-2 repetitions, fewer sweep points.
        #[arg(long)]
        quick: bool,
        /// Only check the experiment file and the tools, then exit.
        #[arg(long)]
        check: bool,
    },
    /// List the shipped experiments.
    Experiments,
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
            let mut bed = Testbed::up(&opts).with_context(|| format!("lab up --name {name}"))?;
            bed.persist()
                .with_context(|| format!("lab up --name {name}: make it persistent"))?;
            println!("{}", bed.status());
        }
        Cmd::Status { name: None, json } => {
            let labs = lab::registry::list().context("lab status: list the labs")?;
            if json {
                let v = serde_json::json!({ "labs": labs });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).context("serialise the list")?
                );
            } else {
                print!("{}", lab::registry::table(&labs));
            }
        }
        Cmd::Status {
            name: Some(name),
            json,
        } => {
            let bed =
                Testbed::attach(&name).with_context(|| format!("lab status --name {name}"))?;
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
        Cmd::Down { stale: true, .. } => {
            let reaped = lab::registry::reap_stale().context("lab down --stale")?;
            let mut failed = 0;
            for (l, res) in &reaped {
                match res {
                    Ok(()) => println!("removed {}", lab::registry::describe(l)),
                    Err(e) => {
                        failed += 1;
                        eprintln!("error: cannot remove {}: {e}", lab::registry::describe(l));
                    }
                }
            }
            if reaped.is_empty() {
                println!("no stale lab");
            }
            if failed > 0 {
                anyhow::bail!("lab down --stale: {failed} stale lab(s) not removed");
            }
        }
        Cmd::Down { name, .. } => {
            let removed = lab::down(&name).with_context(|| format!("lab down --name {name}"))?;
            println!("removed {}", removed.join(", "));
        }
        Cmd::Demo {
            name,
            out,
            rate,
            duration,
            profile,
        } => {
            let opts = lab::demo::DemoOptions {
                name,
                out,
                rate,
                duration,
                profile,
            };
            let res = lab::demo::run(&opts).context("lab demo")?;
            print!("{}", res.report);
            println!(
                "written to {}: {}",
                opts.out.display(),
                res.files
                    .iter()
                    .filter_map(|f| f.file_name())
                    .map(|f| f.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if res.interrupted {
                anyhow::bail!("interrupted (the lab was removed; partial results above)");
            }
        }
        Cmd::Run {
            experiment,
            out,
            quick,
            check,
        } => {
            let exp = Experiment::load(&experiment)?;
            lab::runner::preflight(&exp)?;
            if check {
                println!(
                    "{}: ok ({} series, sweep {} over {} values)",
                    exp.origin,
                    exp.series.len(),
                    exp.parameter,
                    exp.plan(quick).values.len()
                );
                return Ok(());
            }
            let out = out.unwrap_or_else(|| lab::runner::default_out(&exp.name));
            let opts = lab::runner::RunOptions { out, quick };
            let res =
                lab::runner::run(&exp, &opts).with_context(|| format!("lab run {}", exp.name))?;
            println!(
                "{}: {} measured, {} already there, {} failed; report {}",
                exp.name,
                res.measured,
                res.skipped,
                res.failures.len(),
                opts.out.join("report.md").display()
            );
            if res.interrupted {
                anyhow::bail!(
                    "interrupted; partial results in {} (re-run with the same --out to resume)",
                    opts.out.display()
                );
            }
            if !res.failures.is_empty() {
                anyhow::bail!(
                    "{} point(s) failed, first: {}",
                    res.failures.len(),
                    res.failures[0].2
                );
            }
        }
        Cmd::Experiments => {
            for (name, _) in lab::experiment::SHIPPED {
                let e = Experiment::load(name)?;
                println!("{name:20} {}", e.title);
            }
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
