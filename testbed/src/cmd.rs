//! Running the iproute2/ethtool commands that configure the lab, and
//! rendering a command line for messages ([`display`]).
//!
//! Configuration goes through the same commands a user would type, so every
//! step is transparent; a failing command becomes an [`Error::Command`]
//! carrying the full command line and its stderr.

use std::process::Command;

use crate::error::{Error, Result};

/// Renders a command line for messages and logs.
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; stdout on success, [`Error::Command`] otherwise.
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    let command = display(cmd);
    let out = cmd.output().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(Error::Command {
            command,
            status: out.status.to_string(),
            stderr: if stderr.is_empty() {
                "(no error output)".to_owned()
            } else {
                stderr.replace('\n', "; ")
            },
        })
    }
}

/// Runs `program args...`.
pub(crate) fn run_args(program: &str, args: &[&str]) -> Result<String> {
    run(Command::new(program).args(args))
}

/// Runs `ip args...`.
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run_args("ip", args)
}
