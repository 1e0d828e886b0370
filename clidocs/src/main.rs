//! `xdpm-docs`: writes or installs the man pages and shell completions of every
//! binary (see clidocs's library).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clidocs::{Layout, generate};

/// Man pages and shell completions (bash, zsh, fish) for gen, sink, tstamp, dut and lab.
#[derive(Debug, Parser)]
#[command(name = "xdpm-docs", version = buildinfo::VERSION)]
struct Args {
    /// Write into DIR/man1 and DIR/completions/{bash,zsh,fish}.
    #[arg(long, value_name = "DIR", conflicts_with = "install")]
    out: Option<PathBuf>,
    /// Install under PREFIX/share (man/man1, bash-completion, zsh, fish).
    #[arg(long)]
    install: bool,
    /// Install prefix.
    #[arg(long, default_value = "/usr/local", requires = "install")]
    prefix: PathBuf,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let layout = match (&a.out, a.install) {
        (Some(d), _) => Layout::out(d),
        (None, true) => Layout::install(&a.prefix),
        (None, false) => {
            eprintln!("error: give --out DIR or --install [--prefix PREFIX]");
            return ExitCode::from(2);
        }
    };
    match generate(&layout) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
