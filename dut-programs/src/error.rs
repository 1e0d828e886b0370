//! The library's error type: what failed, with the kernel's or libbpf's reason.

use std::io;

/// Errors of `dut_programs`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Kernel { what: String, source: io::Error },
    #[error("{what}: {source}")]
    Bpf {
        what: String,
        source: libbpf_rs::Error,
    },
    #[error("no interface '{0}' in this network namespace (see `ip link`)")]
    NoInterface(String),
    #[error("no network namespace '{0}' (see `ip netns list`)")]
    NoNetns(String),
    #[error("{0}")]
    Invalid(String),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> Error {
    let what = what.into();
    move |source| Error::Bpf { what, source }
}
