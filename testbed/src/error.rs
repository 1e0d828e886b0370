//! The library's typed error: what went wrong while building, inspecting or
//! tearing down a testbed, with the failing command and its stderr kept
//! verbatim so that one `{:#}` line tells the user what to fix.

use std::io;

/// Everything the `testbed` library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lab manipulates namespaces, links and BPF programs: root only.
    #[error("lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); run it as root")]
    NotRoot,
    /// A lab name that would not make sane namespace names.
    #[error(
        "invalid lab name {0:?}: use 1-{max} characters from [A-Za-z0-9_-], not starting with '-'",
        max = crate::MAX_NAME_LEN
    )]
    InvalidName(String),
    /// `--queues` outside 1..=64.
    #[error("invalid queue count {0}: must be between 1 and {max}", max = crate::MAX_QUEUES)]
    InvalidQueues(u32),
    /// `up` found (part of) a lab of that name already there.
    #[error("lab {name:?} already exists (namespaces: {}); run `lab down --name {name}` first", existing.join(", "))]
    Exists {
        /// The lab name.
        name: String,
        /// Its namespaces that exist.
        existing: Vec<String>,
    },
    /// The lab has an owner record whose owner is alive but no namespace:
    /// that process is building or tearing it down.
    #[error("lab {name:?} is being built or torn down by process {pid}; pick another name or wait")]
    Claimed {
        /// The lab name.
        name: String,
        /// The owner.
        pid: u32,
    },
    /// No namespace of that lab exists.
    #[error("no lab named {0:?} (no namespace {0}-gen, {0}-dut, {0}-sw or {0}-mon)")]
    NotFound(String),
    /// Some but not all of the lab's namespaces or interfaces exist.
    #[error(
        "lab {name:?} is incomplete ({detail}); run `lab down --name {name}` to remove what is left"
    )]
    Incomplete {
        /// The lab name.
        name: String,
        /// What is missing.
        detail: String,
    },
    /// An external command (`ip`, `tc`, `ethtool`, ...) exited non-zero.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line as run.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// An external command could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not start.
        source: io::Error,
    },
    /// Output of a command or a system file did not look as expected.
    #[error("cannot parse {what}: {detail}")]
    Parse {
        /// What was being read.
        what: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The XDP layer (`xdplayer`: namespace entry, interface lookup, XDP
    /// attachment) failed.
    #[error("{what}: {source}")]
    Layer {
        /// What was being done.
        what: String,
        /// The layer's error.
        source: xdplayer::Error,
    },
    /// A workspace binary is neither beside this executable nor on PATH.
    #[error(
        "`{name}` not found in {dir} nor on PATH; build it with `cargo build --release --workspace`"
    )]
    NoBinary {
        /// The binary.
        name: String,
        /// The directory looked in first.
        dir: String,
    },
    /// The SSH side of an SSH lab (`crate::ssh`): sshd or the client.
    #[error("{what}: {detail}")]
    Ssh {
        /// What was being done.
        what: String,
        /// What went wrong.
        detail: String,
    },
    /// Loading or attaching a BPF program failed.
    #[error("{what}: {source}")]
    Bpf {
        /// What was being done.
        what: String,
        /// libbpf's error.
        source: libbpf_rs::Error,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
