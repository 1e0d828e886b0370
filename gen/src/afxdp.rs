//! The `afxdp` engine: one AF_XDP socket and one thread per queue (pinned to its
//! core). TX frames are pre-filled once from the template; per packet only the
//! varying fields (and the probe, written just before the frame goes on the TX ring)
//! are rewritten. Replies are counted by the XDP reply counter ([`crate::rxcount`]),
//! not by these sockets.
//!
//! Counted means sent: a queue's `tx_packets` is what the kernel completed less
//! what it completed unsent (sendto EBUSY, see [`XskQueue::kick`]); frames put on
//! the ring are `tx_verdicts`. Frame numbering: queue position i sends n = i,
//! i+Q, i+2Q, ... (gen/README.md).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use profiles::wire::probe;
use xdplayer::XskQueue;

use crate::pace::{Pacer, Pending};
use crate::{Ctx, net, realtime_ns};

/// Largest TX batch (copy mode transmits at most 32 frames per sendto).
pub const BATCH: usize = 32;

/// Runs queue position `i` on its socket until the run ends; returns the pacing
/// deviation histogram.
pub fn queue_thread(
    mut q: XskQueue,
    i: usize,
    core: Option<usize>,
    ctx: Arc<Ctx>,
    mut hist: Histogram<u64>,
) -> Histogram<u64> {
    let Prologue {
        counters,
        total,
        nq,
        deadline_ns,
    } = prologue(&q, i, core, &ctx);
    let crate::Frames::Template(tpl) = &ctx.frames else {
        return hist;
    };
    let len = tpl.len();
    q.prefill(|buf| {
        tpl.fill(buf);
        len
    });
    // Bytes of this queue's first m frames (IMIX: each frame its own size).
    let sizes = tpl.size_cycle(i as u64, nq);
    // plan_queues checked base + queues <= 256.
    let stream = ctx.stream_base.wrapping_add(i as u8);
    let stamp = ctx.stamp;
    let mut k: u64 = 0;
    let mut pacer = ctx
        .rate_per_queue
        .map(|r| Pacer::new(ctx.pattern, r, i as u64 + 1));
    let mut pend = Pending::default();
    crate::wait_until(ctx.t0);
    let end_ns;
    loop {
        let now_ns = ctx.t0.elapsed().as_nanos() as f64;
        if let Some(e) = stopped(&ctx, now_ns, deadline_ns) {
            end_ns = e;
            break;
        }
        if k >= total {
            end_ns = pacer.as_ref().map_or(now_ns, |p| p.next_ns().max(now_ns));
            break;
        }
        let want = match &mut pacer {
            Some(p) => pend.refill(p, now_ns.min(deadline_ns), BATCH, total - k),
            None => BATCH.min(usize::try_from(total - k).unwrap_or(BATCH)),
        };
        if want == 0 {
            if let Some(p) = &pacer {
                idle(&mut q, counters, p.next_ns() - now_ns, &|ok| {
                    sizes.bytes(ok)
                });
            }
            continue;
        }
        let base = k;
        let sent = q.send_batch(want, |j, buf| {
            let c = base + j as u64;
            let pr = stamp.then(|| probe::Repr {
                stream,
                counter: c,
                tx_ns: realtime_ns(),
            });
            tpl.write(buf, i as u64 + c * nq, pr)
        });
        sync(&q, counters, &|ok| sizes.bytes(ok));
        if sent == 0 {
            std::hint::spin_loop();
            continue;
        }
        if k == 0 {
            ctx.note_first_tx();
        }
        if pacer.is_some() {
            for j in 0..sent {
                let _ = hist.record((now_ns - pend.time(j)).max(0.0) as u64);
            }
            pend.consume(sent);
        }
        k += sent as u64;
    }
    finish(&mut q, i, end_ns, &ctx, &|ok| sizes.bytes(ok));
    hist
}

/// What a queue thread (profile or capture) knows before its first frame.
struct Prologue<'a> {
    /// Queue position i's counters.
    counters: &'a crate::report::QueueCounters,
    /// Its share of the run's frames (u64::MAX: no count).
    total: u64,
    /// Number of queues (frame n of position i is i + k * nq).
    nq: u64,
    /// The run's end in ns since t0 (infinite without --duration).
    deadline_ns: f64,
}

/// The start both queue threads share: pins the thread to `core` (a warning when
/// that fails) and reads queue position `i`'s part of the run from `ctx`.
fn prologue<'a>(q: &XskQueue, i: usize, core: Option<usize>, ctx: &'a Ctx) -> Prologue<'a> {
    if let Some(c) = core
        && let Err(e) = net::pin_to(c)
    {
        eprintln!("warning: queue {}: {e:#}", q.queue_id());
    }
    Prologue {
        counters: &ctx.counters[i],
        total: ctx.count_for(i),
        nq: ctx.nq as u64,
        deadline_ns: ctx.duration.map_or(f64::INFINITY, |d| d.as_nanos() as f64),
    }
}

/// The end time when the run is over at `now_ns` (Ctrl-C or the deadline).
#[inline]
fn stopped(ctx: &Ctx, now_ns: f64, deadline_ns: f64) -> Option<f64> {
    if ctx.stop.load(Relaxed) {
        Some(now_ns.min(deadline_ns))
    } else if now_ns >= deadline_ns {
        Some(deadline_ns)
    } else {
        None
    }
}

/// Ends queue position `i`'s run: its end time, then every frame on the ring waited
/// for (completed sent or dropped) before the counts are final.
fn finish(q: &mut XskQueue, i: usize, end_ns: f64, ctx: &Ctx, bytes: &dyn Fn(u64) -> u64) {
    let counters = &ctx.counters[i];
    ctx.end_ns[i].store(end_ns as u64, Relaxed);
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until && q.tx_in_flight() > 0 {
        q.complete();
        q.kick();
        std::thread::sleep(Duration::from_micros(200));
    }
    sync(q, counters, bytes);
    counters.store_xsk(q);
}

/// Waits for a departure `wait_ns` away: sleeps when it is far (publishing the
/// completions first), spins otherwise.
fn idle(
    q: &mut XskQueue,
    counters: &crate::report::QueueCounters,
    wait_ns: f64,
    bytes: &dyn Fn(u64) -> u64,
) {
    if wait_ns > 300_000.0 {
        // Completions move only when reclaimed: publish them before sleeping (the
        // spin below changes nothing to publish).
        q.complete();
        sync(q, counters, bytes);
        std::thread::sleep(Duration::from_nanos(
            ((wait_ns - 150_000.0) as u64).min(1_000_000),
        ));
    } else {
        std::hint::spin_loop();
    }
}

/// `--pcap`: queue position `i` sends frames n = i, i+Q, ... of the replay (the
/// file's frame n mod F), each when due ([`crate::replay::Replay::due_ns`]).
pub fn replay_thread(
    mut q: XskQueue,
    i: usize,
    core: Option<usize>,
    ctx: Arc<Ctx>,
    mut hist: Histogram<u64>,
) -> Histogram<u64> {
    let Prologue {
        counters,
        total,
        nq,
        deadline_ns,
    } = prologue(&q, i, core, &ctx);
    let crate::Frames::Capture(rp) = &ctx.frames else {
        return hist;
    };
    let n_of = |k: u64| i as u64 + k * nq;
    // Bytes of this queue's first m frames, advanced as completions come in.
    let acc = std::cell::Cell::new((0u64, 0u64));
    let bytes = |ok: u64| {
        let (mut m, mut b) = acc.get();
        while m < ok {
            b += rp.frame(n_of(m)).len() as u64;
            m += 1;
        }
        acc.set((m, b));
        b
    };
    let mut k: u64 = 0;
    crate::wait_until(ctx.t0);
    let end_ns;
    loop {
        let now_ns = ctx.t0.elapsed().as_nanos() as f64;
        if let Some(e) = stopped(&ctx, now_ns, deadline_ns) {
            end_ns = e;
            break;
        }
        if k >= total {
            end_ns = now_ns;
            break;
        }
        let mut want = 0;
        while want < BATCH
            && k + (want as u64) < total
            && rp.due_ns(n_of(k + want as u64)) <= now_ns
        {
            want += 1;
        }
        if want == 0 {
            idle(&mut q, counters, rp.due_ns(n_of(k)) - now_ns, &bytes);
            continue;
        }
        let sent = q.send_batch(want, |j, buf| {
            let f = rp.frame(n_of(k + j as u64));
            buf[..f.len()].copy_from_slice(f);
            f.len()
        });
        sync(&q, counters, &bytes);
        if sent == 0 {
            std::hint::spin_loop();
            continue;
        }
        if k == 0 {
            ctx.note_first_tx();
        }
        for j in 0..sent as u64 {
            let _ = hist.record((now_ns - rp.due_ns(n_of(k + j))).max(0.0) as u64);
        }
        k += sent as u64;
    }
    finish(&mut q, i, end_ns, &ctx, &bytes);
    hist
}
/// Publishes the socket's counts: confirmed departures (and their bytes: the
/// queue's first `ok` frames, each with its size), hand-overs, drops, stalls.
#[inline]
fn sync(q: &XskQueue, counters: &crate::report::QueueCounters, bytes: &dyn Fn(u64) -> u64) {
    let st = q.counters();
    let ok = q.tx_confirmed();
    counters.tx_packets.store(ok, Relaxed);
    counters.tx_bytes.store(bytes(ok), Relaxed);
    counters.tx_verdicts.store(st.tx_packets, Relaxed);
    counters.tx_dropped.store(st.tx_dropped, Relaxed);
    counters
        .tx_stall_no_frames
        .store(st.tx_stall_no_frames, Relaxed);
    counters
        .tx_stall_ring_full
        .store(st.tx_stall_ring_full, Relaxed);
}
