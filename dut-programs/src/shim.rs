//! The host build of `src/bpf/logic.h` (compiled by `build.rs` with `cc` from
//! `src/shim/shim.c`): the same per-packet code as the XDP programs, run on a
//! frame in a user-space buffer. The user-space execution point runs it on
//! AF_XDP frames; the tests check it against `BPF_PROG_TEST_RUN` byte for byte.
//!
//! Invariant: the frame buffer has room to grow (`capacity`), as an XDP
//! frame has tailroom; the shim never writes past it.

use std::collections::HashMap;
use std::ffi::c_void;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::allow::AllowList;
use crate::counters::Counters;
use crate::skel::{Config, DNS_KEY_LEN, DNS_VALUE_LEN, Program, RawConfig};

#[repr(C, align(64))]
#[derive(Default)]
struct RawCounters([u64; 16]);

type LookupFn = unsafe extern "C" fn(*mut c_void, *const u8) -> *const u8;
type AllowFn = unsafe extern "C" fn(*mut c_void, u32) -> i32;
type Allow6Fn = unsafe extern "C" fn(*mut c_void, *const u8) -> i32;

#[repr(C)]
struct HCtx {
    data: *mut u8,
    data_end: *mut u8,
    frame_end: *mut u8,
    cfg: *const RawConfig,
    counters: *mut RawCounters,
    lookup: Option<LookupFn>,
    lookup_arg: *mut c_void,
    allow: Option<AllowFn>,
    allow_arg: *mut c_void,
    allow6: Option<Allow6Fn>,
}

unsafe extern "C" {
    fn dut_shim_run(prog: i32, ctx: *mut HCtx) -> i32;
    fn dut_shim_counters_size() -> usize;
}

/// The cache as user space holds it.
pub type Cache = HashMap<[u8; DNS_KEY_LEN], [u8; DNS_VALUE_LEN]>;

unsafe extern "C" fn lookup(arg: *mut c_void, key: *const u8) -> *const u8 {
    // SAFETY: arg is the &Cache passed by `Shim::run`, key points at DNS_KEY_LEN bytes.
    let cache = unsafe { &*(arg as *const Cache) };
    let key = unsafe { &*(key as *const [u8; DNS_KEY_LEN]) };
    cache.get(key).map_or(std::ptr::null(), |v| v.as_ptr())
}

unsafe extern "C" fn allowed(arg: *mut c_void, saddr: u32) -> i32 {
    // SAFETY: arg is the &AllowList passed by `Shim::run`.
    let list = unsafe { &*(arg as *const AllowList) };
    // saddr holds the header's bytes (network order) as read from memory.
    i32::from(list.contains(Ipv4Addr::from(saddr.to_ne_bytes())))
}

unsafe extern "C" fn allowed6(arg: *mut c_void, saddr: *const u8) -> i32 {
    // SAFETY: arg is the &AllowList passed by `Shim::run`; saddr points at
    // the 16 address bytes of the frame's IPv6 header (network order).
    let list = unsafe { &*(arg as *const AllowList) };
    let bytes = unsafe { *(saddr as *const [u8; 16]) };
    i32::from(list.contains6(Ipv6Addr::from(bytes)))
}

/// One program's logic in user space, with its own counters.
pub struct Shim {
    program: Program,
    cfg: RawConfig,
    counters: Box<RawCounters>,
    cache: Arc<Cache>,
    allow: Arc<AllowList>,
    run_time_ns: u64,
    run_cnt: u64,
}

impl std::fmt::Debug for Shim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shim")
            .field("program", &self.program)
            .field("cache", &self.cache.len())
            .finish()
    }
}

impl Shim {
    /// `program` configured as `config`, with an empty cache.
    pub fn new(program: Program, config: &Config) -> Shim {
        // SAFETY: pure function.
        assert_eq!(
            unsafe { dut_shim_counters_size() },
            size_of::<RawCounters>()
        );
        Shim {
            program,
            cfg: config.raw(),
            counters: Box::default(),
            cache: Arc::new(Cache::new()),
            allow: Arc::new(AllowList::new()),
            run_time_ns: 0,
            run_cnt: 0,
        }
    }

    /// The cache (dns-cache), to fill (copied first if shared).
    pub fn cache_mut(&mut self) -> &mut Cache {
        Arc::make_mut(&mut self.cache)
    }

    /// Shares a filled cache (several queues' shims read one copy).
    pub fn set_cache(&mut self, cache: Arc<Cache>) {
        self.cache = cache;
    }

    /// Shares an allow-list (syn-filter).
    pub fn set_allow(&mut self, allow: Arc<AllowList>) {
        self.allow = allow;
    }

    /// Runs the program on the first `len` bytes of `buf` (the rest is
    /// tailroom); returns the verdict and the frame's new length.
    pub fn run(&mut self, buf: &mut [u8], len: usize) -> (u32, usize) {
        let len = len.min(buf.len());
        let base = buf.as_mut_ptr();
        let mut ctx = HCtx {
            data: base,
            // SAFETY: len <= buf.len(), both stay inside buf.
            data_end: unsafe { base.add(len) },
            frame_end: unsafe { base.add(buf.len()) },
            cfg: &self.cfg,
            counters: &mut *self.counters,
            lookup: Some(lookup),
            lookup_arg: Arc::as_ptr(&self.cache) as *mut c_void,
            allow: Some(allowed),
            allow_arg: Arc::as_ptr(&self.allow) as *mut c_void,
            allow6: Some(allowed6),
        };
        // SAFETY: ctx points into buf and at live fields of self for the call.
        let v = unsafe { dut_shim_run(self.program.shim_id(), &mut ctx) };
        let new_len = (ctx.data_end as usize).saturating_sub(base as usize);
        (v as u32, new_len)
    }

    /// Adds `n` runs that took `ns` in all (the user-space execution point's
    /// analogue of the kernel's `run_time_ns`/`run_cnt`).
    pub fn account(&mut self, ns: u64, n: u64) {
        self.run_time_ns += ns;
        self.run_cnt += n;
    }

    /// `(run_time_ns, run_cnt)` accounted so far.
    pub fn run_stats(&self) -> (u64, u64) {
        (self.run_time_ns, self.run_cnt)
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        Counters(self.counters.0)
    }
}
