//! The user-space execution point (`dut install --mode userspace`): the
//! interface's queues are redirected to AF_XDP sockets (`xdplayer`: our
//! redirect program, copy or zero-copy, the placeholder put back on exit),
//! and each queue's thread runs the program's logic, the very `logic.h` the
//! XDP programs are built from ([`crate::shim`]), on every received frame;
//! answers (`XDP_TX`) go back out through the socket's TX ring.
//!
//! Invariants: the per-packet path does not allocate (one preallocated
//! staging buffer per batch slot); a frame the logic passes (`XDP_PASS`)
//! cannot be handed to the kernel stack from user space, so it is counted
//! in `pass` and dropped: the redirect filter keeps non-DNS traffic in the
//! kernel for the DNS programs (UDP to port 53 only reaches the sockets).
//! Ctrl-C (the `stop` flag) ends every loop; closing the port restores the
//! interface.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use xdplayer::{Filter, XskConfig, XskMode, XskPort, XskQueue};

use crate::allow::AllowList;
use crate::counters::Counters;
use crate::error::{Error, Result};
use crate::shim::{Cache, Shim};
use crate::skel::{Config, Program};

/// Frames per receive batch.
const BATCH: usize = 64;
/// Staging buffer per frame: an UMEM frame (2048) and room to grow.
const STAGE: usize = 2048;

/// What a user-space run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The logic's counters, summed over queues.
    pub counters: Counters,
    /// Frames received / sent by the sockets.
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Answers that found no free TX frame (dropped).
    pub tx_full: u64,
    /// `"copy"` or `"zerocopy"`.
    pub xsk_mode: &'static str,
    /// Where the redirect program runs (`"native"`/`"generic"`).
    pub attach_mode: Option<&'static str>,
    pub queues: usize,
    /// Time spent taking frames off the RX ring and running the logic on
    /// them (`run_time_ns`), and how many (`run_cnt`): the user-space
    /// analogue of the kernel's BPF run-time statistics.
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// Options of a user-space run.
#[derive(Debug, Clone)]
pub struct Options {
    pub iface: String,
    pub program: Program,
    pub config: Config,
    pub cache: Option<Arc<Cache>>,
    pub allow: Option<Arc<AllowList>>,
    pub force: bool,
}

/// Which frames go to the sockets: UDP to port 53 (IPv4 or IPv6) for the DNS
/// programs, TCP for syn-filter, everything for drop/checksum; a tenant
/// (`--only-dst`, IPv4 or IPv6) narrows it to that prefix and that IP version,
/// so other tenants' traffic stays in the kernel, as the logic's guard would
/// pass it.
fn redirect_filter(program: Program, config: &Config) -> Filter {
    let mut f = match program {
        Program::DnsPing | Program::DnsCache => Filter {
            proto: Some(17),
            dst_port: Some(53),
            ..Filter::default()
        },
        // TCP only: everything else stays in the kernel (passed, as the program would).
        Program::SynFilter => Filter {
            proto: Some(6),
            ..Filter::default()
        },
        Program::Drop | Program::Checksum => Filter::all(),
    };
    if let Some((addr, len)) = config.tenant {
        f.dst_ip = Some(addr);
        f.dst_prefix_len = Some(len);
    }
    f
}

/// One queue's loop: receive a batch, run the logic on a staged copy of each
/// frame, send the answers.
fn serve_counted(
    mut q: XskQueue,
    mut shim: Shim,
    stop: &AtomicBool,
    progress: impl Fn(&Shim),
) -> (Shim, u64, u64, u64) {
    let mut stage = vec![[0u8; STAGE]; BATCH];
    let mut lens = [0usize; BATCH];
    let mut tx_full = 0u64;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut n_tx = 0usize;
        let t0 = Instant::now();
        let got = q.recv_batch(BATCH, |frame, _meta| {
            let len = frame.len().min(STAGE - 256);
            let buf = &mut stage[n_tx];
            buf[..len].copy_from_slice(&frame[..len]);
            let (verdict, new_len) = shim.run(buf, len);
            if verdict == 3 {
                lens[n_tx] = new_len;
                n_tx += 1;
            }
        });
        if got > 0 {
            shim.account(t0.elapsed().as_nanos() as u64, got as u64);
        }
        if n_tx > 0 {
            let mut sent = 0;
            let mut tries = 0;
            while sent < n_tx && tries < 1000 {
                let k = q.send_batch(n_tx - sent, |i, out| {
                    let j = sent + i;
                    let l = lens[j].min(out.len());
                    out[..l].copy_from_slice(&stage[j][..l]);
                    l
                });
                sent += k;
                if k == 0 {
                    tries += 1;
                    q.complete();
                }
            }
            tx_full += (n_tx - sent) as u64;
        } else {
            q.complete();
        }
        if got == 0 {
            q.poll_rx(100);
        }
        if last.elapsed() >= PUBLISH_EVERY {
            last = Instant::now();
            progress(&shim);
        }
    }
    progress(&shim);
    let c = q.counters();
    (shim, tx_full, c.rx_packets, c.tx_packets)
}

/// How often the serving threads publish their counters: `dut status` (and a lab
/// ledger read 300 ms after the traffic stopped) must see what was processed, not
/// a second-old figure.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Opens the sockets on every queue of `opts.iface`, serves until `stop`,
/// restores the interface. `ready` is called once the sockets are bound and
/// the redirect program attached; `progress` gets the counters summed so far
/// every [`PUBLISH_EVERY`] (from the first queue's thread).
pub fn run(
    opts: &Options,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(&Report),
    progress: impl Fn(Counters, u64, u64) + Send + Sync,
) -> Result<Report> {
    let queues = xdplayer::queue_count(&opts.iface).max(1);
    let mut cfg = XskConfig::new(opts.iface.clone());
    cfg.queues = (0..queues).collect();
    cfg.mode = XskMode::Auto;
    cfg.redirect = Some(redirect_filter(opts.program, &opts.config));
    cfg.force = opts.force;
    let mut port = XskPort::open(&cfg)
        .map_err(|e| Error::Invalid(format!("AF_XDP on {}: {e}", opts.iface)))?;
    let xsk_mode = port.bound_mode().as_str();
    let attach_mode = port.attach_mode();
    let qs = port.take_queues();
    let nq = qs.len();
    let shared: Vec<std::sync::Mutex<(Counters, u64, u64)>> = (0..nq)
        .map(|_| std::sync::Mutex::new((Counters::default(), 0, 0)))
        .collect();
    let mut report = Report {
        xsk_mode,
        attach_mode,
        queues: nq,
        ..Default::default()
    };
    ready(&report);
    let results: Vec<(Shim, u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = qs
            .into_iter()
            .enumerate()
            .map(|(i, q)| {
                let mut shim = Shim::new(opts.program, &opts.config);
                if let Some(c) = &opts.cache {
                    shim.set_cache(c.clone());
                }
                if let Some(a) = &opts.allow {
                    shim.set_allow(a.clone());
                }
                let stop = &stop;
                let shared = &shared;
                let progress = &progress;
                s.spawn(move || {
                    let (shim, tx_full, rx, tx) = serve_counted(q, shim, stop, |sh: &Shim| {
                        if let Ok(mut slot) = shared[i].lock() {
                            let (ns, n) = sh.run_stats();
                            *slot = (sh.counters(), ns, n);
                        }
                        if i == 0 {
                            let (mut sum, mut ns, mut n) = (Counters::default(), 0, 0);
                            for m in shared.iter() {
                                if let Ok(c) = m.lock() {
                                    for (a, b) in sum.0.iter_mut().zip(c.0.0) {
                                        *a += b;
                                    }
                                    ns += c.1;
                                    n += c.2;
                                }
                            }
                            progress(sum, ns, n);
                        }
                    });
                    (shim, tx_full, rx, tx)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (shim, tx_full, rx, tx) in &results {
        for (a, b) in report.counters.0.iter_mut().zip(shim.counters().0) {
            *a += b;
        }
        report.tx_full += tx_full;
        report.rx_packets += rx;
        report.tx_packets += tx;
        let (ns, n) = shim.run_stats();
        report.run_time_ns += ns;
        report.run_cnt += n;
    }
    port.close()
        .map_err(|e| Error::Invalid(format!("restore {}: {e}", opts.iface)))?;
    Ok(report)
}
