//! `dut_programs`: the DUT side of the toolkit. XDP programs in C
//! (`src/bpf/*.bpf.c`: drop, N x IPv4 checksum, DNS NXDOMAIN responder, DNS
//! cache from a BPF hash map, TCP SYN filter with an LPM-trie allow-list; all
//! parse past up to two VLAN tags) whose per-packet logic lives in one header
//! (`src/bpf/logic.h`) that is also compiled for user space ([`shim`]), and the
//! library behind the `dut` binary: loading ([`skel`]), attaching and finding
//! programs through the kernel ([`kernel`]), counters ([`counters`]), the
//! cache map ([`cache`]), the syn-filter allow-list ([`allow`]), the
//! operations behind the commands with typed inputs and outputs ([`ops`]:
//! install, status, remove, update-bench) and the command line that parses,
//! calls them and prints ([`cli`]).

pub mod allow;
pub mod cache;
pub mod cli;
pub mod counters;
pub mod error;
pub mod kernel;
pub mod ops;
pub mod shim;
pub mod skel;
pub mod userspace;

pub use counters::Counters;
pub use error::{Error, Result};
pub use skel::{Config, LoadOptions, Loaded, Program, load};
