//! The XDP/AF_XDP layer every tool shares (`gen`, `sink`, `tstamp`, `dut`, `lab`).
//!
//! One crate, one module per concept:
//!
//! * [`attach`]: query, attach, replace and detach XDP programs through netlink, and
//!   [`attach::XdpGuard`], which replaces what is on an interface and puts it back.
//! * [`owner`]: the ownership records that make attachments crash-safe: who attached
//!   what, process-scoped or persistent, and how a dead owner's leftover (an orphan)
//!   is told apart from a live foreign program.
//! * [`placeholder`]: the one XDP_PASS program (`src/bpf/pass.bpf.c`).
//! * [`redirect`]: the AF_XDP redirect program (`src/bpf/xsk_redirect.bpf.c`) and its filter.
//! * [`socket`]: AF_XDP socket set-up ([`XskPort`]); [`datapath`]: the per-queue
//!   allocation-free send/receive batches ([`XskQueue`]).
//! * [`ethtool`]: queue counts (ETHTOOL_GCHANNELS); [`iface`]: interface lookup and MAC;
//!   [`netns`]: namespace entry and cookies; [`clock`]: CLOCK_REALTIME;
//!   [`atomic_file`]: temp-name-and-rename output files; [`hook`]: the test-only
//!   abort points of the kill tests.
//!
//! Invariant of the whole crate: programs are found through the kernel (interface ->
//! attached program id -> info), never through bpffs pins, so everything works the
//! same under `ip netns exec` (which hides the host's bpffs) and with `--netns`.

pub mod atomic_file;
pub mod attach;
pub mod clock;
pub mod datapath;
mod error;
pub mod ethtool;
pub mod hook;
pub mod iface;
pub mod netns;
pub mod owner;
pub mod placeholder;
pub mod redirect;
pub mod socket;
pub mod stop;

pub use attach::{XdpAttached, XdpGuard, XdpMode, attached_prog, xdp_query};
pub use datapath::{RxMeta, XskQueue, XskStats, hw_ts_error_text};
pub use error::{Error, Result, XskError};
pub use ethtool::{queue_count, queue_count_ethtool, stats as ethtool_stats};
pub use iface::ifindex;
pub use owner::Scope;
pub use placeholder::PLACEHOLDER_PROG;
pub use redirect::{Filter, REDIRECT_PROG};
pub use socket::{BoundMode, XskConfig, XskMode, XskPort};
