//! `lab`: command-line front end of the virtual testbed. Parses arguments and
//! calls the library; all logic lives in `lib.rs` and its modules.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use lab::cli::{Cli, Cmd, StatusOutput, UpTopology};
use lab::experiment::Experiment;
use testbed::{Testbed, UpOptions};

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Up {
            name,
            queues,
            topology,
            ipv6,
        } => {
            if ipv6 && topology.ssh() {
                anyhow::bail!(
                    "lab up --ipv6: not supported yet with --topology ssh or ssh-tenants; use switched, direct or tenants"
                );
            }
            let (mut bed, file) = if topology.ssh() {
                let tenants = topology == UpTopology::SshTenants;
                let (bed, file) = lab::sshlab::up(&name, queues, tenants).with_context(|| {
                    format!(
                        "lab up --name {name} --topology {}",
                        if tenants { "ssh-tenants" } else { "ssh" }
                    )
                })?;
                (bed, Some(file))
            } else {
                let opts = UpOptions {
                    name: name.clone(),
                    topology: topology.testbed(),
                    queues,
                };
                let mut bed =
                    Testbed::up(&opts).with_context(|| format!("lab up --name {name}"))?;
                if ipv6 {
                    // On failure `bed` is dropped, which tears the half-made lab down.
                    bed.enable_ipv6()
                        .with_context(|| format!("lab up --name {name} --ipv6"))?;
                }
                (bed, None)
            };
            bed.persist()
                .with_context(|| format!("lab up --name {name}: make it persistent"))?;
            println!("{}", bed.status());
            if let Some(f) = file {
                println!("testbed file: {}", f.display());
            }
        }
        Cmd::Status { name: None, output } => {
            let labs = lab::registry::list().context("lab status: list the labs")?;
            if output.format == StatusOutput::Json {
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
            output,
        } => {
            let bed =
                Testbed::attach(&name).with_context(|| format!("lab status --name {name}"))?;
            let status = bed.status();
            let file = lab::sshlab::testbed_file_of(&name);
            if output.format == StatusOutput::Json {
                let mut v = serde_json::to_value(&status).context("serialise status")?;
                if let (Some(f), Some(o)) = (&file, v.as_object_mut()) {
                    o.insert("testbed".into(), f.display().to_string().into());
                }
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).context("serialise status")?
                );
            } else {
                println!("{status}");
                if let Some(f) = file {
                    println!("testbed file: {}", f.display());
                }
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
            let removed =
                testbed::down(&name).with_context(|| format!("lab down --name {name}"))?;
            println!("removed {}", removed.join(", "));
        }
        Cmd::Demo {
            name,
            out,
            rate,
            duration,
            profile,
            testbed,
        } => {
            let opts = lab::demo::DemoOptions {
                name,
                out,
                rate,
                duration,
                profile,
                testbed,
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
        Cmd::Compare { a, b } => {
            print!("{}", lab::provenance::compare_text(&a, &b)?);
        }
        Cmd::Run {
            experiment,
            out,
            quick,
            repetitions,
            check,
            testbed,
            rate,
        } => {
            let exp = Experiment::load(&experiment)?;
            if testbed.is_none() {
                lab::runner::preflight(&exp)?;
            }
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
            let opts = lab::runner::RunOptions {
                out,
                quick,
                repetitions,
                testbed,
                unpaced_ok: rate.is_some(),
            };
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
