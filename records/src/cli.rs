//! The output option every tool takes, defined once: `--output FORMAT`, and
//! `--json` as an alias of `--output json` (the two conflict). Each tool names
//! its own formats (a [`Format`]: text and json, and csv where it writes CSV);
//! the option is flattened into the tool's clap definition:
//!
//! ```ignore
//! #[command(flatten)]
//! pub output: records::cli::OutputOpt<OutputArg>,
//! ```
//!
//! Both arguments are global, so in a tool with subcommands they go before or
//! after the subcommand.

use clap::builder::EnumValueParser;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, ValueEnum};

/// `--stop-on-stdin-eof`: stop as on Ctrl-C when standard input ends (signals do
/// not cross ssh; a remote run stops when its connection goes). Global, so it goes
/// anywhere on the command line; the tools hand it to `xdplayer::stop`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::Args)]
pub struct StopOpt {
    /// Stop as on Ctrl-C (final record printed, programs removed) when standard
    /// input ends: for runs over ssh, which carries no signals.
    #[arg(long = "stop-on-stdin-eof", global = true)]
    pub stop_on_stdin_eof: bool,
}

impl StopOpt {
    /// The flag as written on a command line.
    pub const FLAG: &'static str = "--stop-on-stdin-eof";
}

/// A tool's output formats.
pub trait Format: ValueEnum + Clone + Send + Sync + 'static {
    /// Without `--output`.
    const DEFAULT: Self;
    /// What `--json` means.
    const JSON: Self;
}

/// The formats of a tool that writes text or JSON records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextJson {
    /// Lines for people.
    Text,
    /// JSON: the tool's records, one per line.
    Json,
}

impl Format for TextJson {
    const DEFAULT: TextJson = TextJson::Text;
    const JSON: TextJson = TextJson::Json;
}

/// The formats of a tool that also writes CSV (one row per interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextJsonCsv {
    /// Lines for people.
    Text,
    /// JSON: the tool's records, one per line.
    Json,
    /// CSV with a header.
    Csv,
}

impl Format for TextJsonCsv {
    const DEFAULT: TextJsonCsv = TextJsonCsv::Text;
    const JSON: TextJsonCsv = TextJsonCsv::Json;
}

/// `--output FORMAT` / `--json`, resolved: [`Format::DEFAULT`] when neither is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputOpt<F> {
    /// The format asked for.
    pub format: F,
}

impl<F: Format> Default for OutputOpt<F> {
    fn default() -> Self {
        OutputOpt { format: F::DEFAULT }
    }
}

const OUTPUT: &str = "output";
const JSON: &str = "json";

impl<F: Format> FromArgMatches for OutputOpt<F> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let json = m
            .try_get_one::<bool>(JSON)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, e))?
            .copied()
            .unwrap_or(false);
        let given = m
            .try_get_one::<F>(OUTPUT)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e))?
            .cloned();
        Ok(OutputOpt {
            format: match (json, given) {
                (true, _) => F::JSON,
                (false, Some(f)) => f,
                (false, None) => F::DEFAULT,
            },
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl<F: Format> Args for OutputOpt<F> {
    fn augment_args(cmd: Command) -> Command {
        let default = F::DEFAULT
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        cmd.arg(
            Arg::new(OUTPUT)
                .long(OUTPUT)
                .value_name("FORMAT")
                .value_parser(EnumValueParser::<F>::new())
                .action(ArgAction::Set)
                .global(true)
                .help(format!("Output format ({default} unless given)")),
        )
        .arg(
            Arg::new(JSON)
                .long(JSON)
                .action(ArgAction::SetTrue)
                .global(true)
                .conflicts_with(OUTPUT)
                .help("Same as --output json"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    type Fmt = TextJsonCsv;

    #[derive(Debug, Parser)]
    struct Tool {
        #[command(flatten)]
        output: OutputOpt<Fmt>,
        #[command(subcommand)]
        cmd: Option<Sub>,
    }
    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Status,
    }

    fn parse(argv: &[&str]) -> Result<Fmt, clap::Error> {
        Tool::try_parse_from(std::iter::once("tool").chain(argv.iter().copied()))
            .map(|t| t.output.format)
    }

    #[test]
    fn json_is_output_json_everywhere() {
        assert_eq!(parse(&[]).expect("none"), Fmt::Text);
        assert_eq!(parse(&["--json"]).expect("--json"), Fmt::Json);
        assert_eq!(
            parse(&["--output", "json"]).expect("--output json"),
            Fmt::Json
        );
        assert_eq!(parse(&["--output", "csv"]).expect("csv"), Fmt::Csv);
        // Global: after the subcommand too.
        assert_eq!(parse(&["status", "--json"]).expect("sub --json"), Fmt::Json);
        assert_eq!(
            parse(&["status", "--output", "csv"]).expect("sub csv"),
            Fmt::Csv
        );
        assert!(
            parse(&["--json", "--output", "text"]).is_err(),
            "the two conflict"
        );
        assert!(parse(&["--output", "yaml"]).is_err());
    }
}
