//! Wire formats shared by every tool: what goes on the wire and how it is read back.
//!
//! Ethernet, IPv4/IPv6 and UDP are read with `etherparse` (see [`udp`]); DNS and the probe
//! payload are our own typed views in the smoltcp style: a `Packet<T: AsRef<[u8]>>` over
//! any buffer, field offsets as named ranges in a private `field` module, checked and
//! unchecked constructors, and a small `Repr` value that is parsed from and emitted into
//! a buffer. Parsers never panic on untrusted input: use `new_checked` for frames from
//! the wire; `new_unchecked` is for emitting into buffers we sized ourselves.

pub mod checksum;
pub mod dns;
pub mod probe;
pub mod tcp;
pub mod udp;

/// The parser's name before it read IPv6 too; kept so callers written against it
/// still build. New code uses [`udp`].
pub use udp as udp4;

/// Why a frame could not be read. Parsers return this instead of panicking; hot paths
/// count it and move on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame truncated")]
    Truncated,
    #[error("neither IPv4 nor IPv6")]
    NotIp,
    #[error("not UDP")]
    NotUdp,
    #[error("IP fragment")]
    Fragment,
    #[error("IPv6 extension header (not parsed)")]
    Ipv6Extension,
    #[error("malformed header")]
    Malformed,
    #[error("DNS name not handled (compression pointer, label or name too long)")]
    BadName,
    #[error("bad magic")]
    BadMagic,
}
