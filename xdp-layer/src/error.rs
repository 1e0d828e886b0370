//! The crate's one error type: what failed, on which interface, with the kernel's or
//! libbpf's reason. Per-packet paths never build one (they count events instead).

use std::io;

/// Errors of the XDP/AF_XDP layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The interface does not exist (in this network namespace).
    #[error(
        "no interface named {iface} (in this network namespace): check the name or pass --netns"
    )]
    NoSuchInterface {
        /// Interface name.
        iface: String,
    },
    /// The network namespace does not exist.
    #[error("network namespace {name:?} not found ({path}): list them with `ip netns`")]
    NoSuchNetns {
        /// Name given.
        name: String,
        /// Path tried.
        path: String,
    },
    /// Bad configuration.
    #[error("invalid AF_XDP configuration: {0}")]
    Config(String),
    /// The interface has fewer queues than requested.
    #[error("{iface} has {available} queue(s); queue {queue} requested (see `ethtool -l {iface}`)")]
    NoSuchQueue {
        /// Interface name.
        iface: String,
        /// Requested queue.
        queue: u32,
        /// Queues the interface has.
        available: u32,
    },
    /// A live foreign XDP program (or a persistent installation) is attached.
    #[error(
        "{iface} carries XDP program `{name}` (id {id}), not ours{holder}: pass --force to replace it (it is put back on exit)"
    )]
    Foreign {
        /// Interface name.
        iface: String,
        /// Program name.
        name: String,
        /// Program id.
        id: u32,
        /// Who holds it, from its ownership record (`""` when there is none).
        holder: String,
    },
    /// Zero-copy was required and the driver refused it.
    #[error(
        "{iface} queue {queue}: zero-copy AF_XDP not supported by the driver ({source}); use copy mode"
    )]
    ZeroCopyUnsupported {
        /// Interface name.
        iface: String,
        /// Queue.
        queue: u32,
        /// Kernel error.
        source: io::Error,
    },
    /// Creating the UMEM or the socket failed.
    #[error("AF_XDP socket on {iface} queue {queue}: {what}: {detail}")]
    Socket {
        /// Interface name.
        iface: String,
        /// Queue.
        queue: u32,
        /// Step.
        what: &'static str,
        /// Detail (kernel error).
        detail: String,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// Kernel error.
        source: io::Error,
    },
    /// libbpf failed.
    #[error("{what}: {source}")]
    Bpf {
        /// What we were doing.
        what: String,
        /// libbpf error.
        source: libbpf_rs::Error,
    },
}

/// The name the AF_XDP users have always matched on.
pub type XskError = Error;

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(what: impl Into<String>, source: io::Error) -> Error {
    Error::Io {
        what: what.into(),
        source,
    }
}

/// A negative libbpf return code as an error.
pub(crate) fn neg_err(what: impl Into<String>, ret: i32) -> Error {
    io_err(what, io::Error::from_raw_os_error(-ret))
}

pub(crate) fn bpf_err(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> Error {
    let what = what.into();
    move |source| Error::Bpf { what, source }
}
