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
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Xdp(#[from] xdplayer::Error),
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn bpf(what: impl Into<String>) -> impl FnOnce(libbpf_rs::Error) -> Error {
    let what = what.into();
    move |source| Error::Bpf { what, source }
}
