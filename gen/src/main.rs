//! `gen`: command line over the `xgen` library (see `gen/README.md`).

use std::process::ExitCode;

use xgen::cli::Args;

fn main() -> ExitCode {
    let args = Args::parse_checked();
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
    xdplayer::stop::stop_on_stdin_eof(a.stop.stop_on_stdin_eof);
    let stop = xdplayer::stop::flag()?;
    let o = a.options();
    xgen::run(&o, stop, std::io::stdout().lock())?;
    Ok(())
}
