//! `lab`'s command line (clap), in the library so the man-page generator sees the
//! binary's own definition.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use testbed::{DEFAULT_NAME, Topology};

/// Virtual testbed of network namespaces and veth pairs: generator, switch
/// with a mirror port, DUT and monitor.
#[derive(Debug, Parser)]
#[command(version = buildinfo::VERSION, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// `lab status --output`: a table (every lab) or the lab's description, or pretty-printed JSON.
pub use records::cli::TextJson as StatusOutput;

/// `lab up --topology`: the testbed's topologies, and `ssh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpTopology {
    /// gen - switch (mirror to mon) - dut.
    Switched,
    /// gen - dut.
    Direct,
    /// switched, the DUT a virtualisation host with tenants.
    Tenants,
    /// switched, every host reached only over SSH (`lab status` names its testbed file).
    Ssh,
    /// tenants, every host and tenant reached only over SSH (a testbed file
    /// with [[tenant]] entries, for `lab run tenants --testbed FILE`).
    SshTenants,
}

impl UpTopology {
    /// The testbed topology (`ssh` is switched, `ssh-tenants` tenants).
    pub fn testbed(self) -> Topology {
        match self {
            UpTopology::Switched | UpTopology::Ssh => Topology::Switched,
            UpTopology::Direct => Topology::Direct,
            UpTopology::Tenants | UpTopology::SshTenants => Topology::Tenants,
        }
    }

    /// Whether its hosts are reached over SSH (`ssh`, `ssh-tenants`).
    pub fn ssh(self) -> bool {
        matches!(self, UpTopology::Ssh | UpTopology::SshTenants)
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Build a lab (fails if one of that name exists).
    Up {
        /// Lab name: namespaces are NAME-gen, NAME-sw, NAME-dut, NAME-mon.
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        /// TX/RX queues on the generator and DUT veths (1-64).
        #[arg(long, default_value_t = 1)]
        queues: u32,
        /// switched: gen - switch (mirror to mon) - dut; direct: gen - dut;
        /// tenants: switched, the DUT a host of tenant namespaces; ssh: switched,
        /// each host reached only over SSH (an sshd per namespace, a testbed file);
        /// ssh-tenants: tenants, each host and each tenant reached only over SSH
        /// (the testbed file lists the tenants).
        #[arg(long, value_enum, default_value_t = UpTopology::Switched)]
        topology: UpTopology,
        /// Dual stack: every host port also gets an IPv6 address (2001:db8::/64),
        /// with DAD, router solicitations, link-local autoconfiguration and MLD
        /// off and static neighbours, so the kernel sends nothing on its own.
        #[arg(long)]
        ipv6: bool,
    },
    /// Show a lab, read from the system; without --name, list every lab on
    /// the machine with its owner and whether it is stale.
    Status {
        /// Lab name.
        #[arg(long)]
        name: Option<String>,
        /// `--output json` (`--json`): print JSON.
        #[command(flatten)]
        output: records::cli::OutputOpt<StatusOutput>,
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
        #[arg(long, default_value = "50k", value_parser = as_written(profiles::units::parse_rate))]
        rate: String,
        /// Traffic duration (5s, 500ms, 2m).
        #[arg(long, default_value = "5s", value_parser = as_written(profiles::units::parse_duration))]
        duration: String,
        /// Workload profile (DNS).
        #[arg(long, default_value = "dns-small")]
        profile: String,
        /// Run on the hosts of this testbed file over ssh (see `lab up --topology
        /// ssh`) instead of building a local lab.
        #[arg(long, value_name = "FILE")]
        testbed: Option<PathBuf>,
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
        /// Repetitions per point instead of the file's (or `[quick]`'s): the full
        /// settings with fewer repetitions; the report and run.json say so. A re-run
        /// with more adds the missing ones.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        repetitions: Option<u32>,
        /// Only check the experiment file and the tools, then exit.
        #[arg(long)]
        check: bool,
        /// Measure on the hosts of this testbed file over ssh instead of local labs
        /// (what a testbed cannot run is refused with the experiment's FILE:LINE).
        #[arg(long, value_name = "FILE")]
        testbed: Option<PathBuf>,
        /// With --testbed: let series without a rate send at gen's maximum
        /// (unpaced) onto the real hosts, which is refused otherwise (`max` is the
        /// only value).
        #[arg(long, value_name = "max", value_parser = ["max"], requires = "testbed")]
        rate: Option<String>,
    },
    /// List the shipped experiments.
    Experiments,
    /// Compare two `lab run` output directories: per series, metric and x, the
    /// means, their ratio (B/A) and whether the 99 % intervals overlap; notes
    /// where the runs' experiment files, machines or tool builds differ (run.json).
    Compare {
        /// The first output directory (A).
        a: PathBuf,
        /// The second (B).
        b: PathBuf,
    },
}

/// A value parser that checks an argument with one of `profiles::units`' parsers (the
/// tools' own, so `lab` refuses what they would refuse, with their message) and keeps
/// it as written, to be passed on to them.
fn as_written<T: 'static>(
    parse: fn(&str) -> Result<T, String>,
) -> impl Fn(&str) -> Result<String, String> + Clone + Send + Sync + 'static {
    move |s| parse(s).map(|_| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn status_output(argv: &[&str]) -> Result<StatusOutput, clap::Error> {
        let cli = Cli::try_parse_from(["lab", "status"].iter().chain(argv))?;
        match cli.command {
            Cmd::Status { output, .. } => Ok(output.format),
            other => panic!("not status: {other:?}"),
        }
    }

    #[test]
    fn status_json_is_output_json() {
        assert_eq!(
            status_output(&["--json"]).expect("--json"),
            StatusOutput::Json
        );
        assert_eq!(
            status_output(&["--output", "json"]).expect("--output json"),
            StatusOutput::Json
        );
        assert_eq!(
            status_output(&["--name", "x", "--json"]).expect("named"),
            StatusOutput::Json
        );
        assert_eq!(status_output(&[]).expect("default"), StatusOutput::Text);
        assert!(status_output(&["--json", "--output", "text"]).is_err());
        assert!(status_output(&["--output", "csv"]).is_err());
    }

    #[test]
    fn demo_takes_the_tools_units_and_refuses_what_they_refuse() {
        let cli = Cli::try_parse_from(["lab", "demo", "--rate", "5Gbit", "--duration", "500ms"])
            .expect("valid units");
        match cli.command {
            Cmd::Demo { rate, duration, .. } => {
                assert_eq!((rate.as_str(), duration.as_str()), ("5Gbit", "500ms"));
            }
            _ => panic!("not demo"),
        }
        let e = Cli::try_parse_from(["lab", "demo", "--rate", "5Gb"])
            .map(|_| ())
            .expect_err("bad unit")
            .to_string();
        assert!(e.contains("rate `5Gb`: unknown unit `Gb`"), "{e}");
        let e = Cli::try_parse_from(["lab", "demo", "--duration", "0s"])
            .map(|_| ())
            .expect_err("zero")
            .to_string();
        assert!(
            e.contains("invalid duration \"0s\": must be greater than 0"),
            "{e}"
        );
    }
}
