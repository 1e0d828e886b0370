//! Request/response matching on a mirror port.
//!
//! Every frame is classified as a request, a response or something to skip, and is
//! reduced to a 64-bit key (a hash; no allocation per packet):
//! * `dns`: client address and port, server address and port, transaction ID and the
//!   question (name bytes as on the wire, type, class). QR=0 is a request from client
//!   to server, QR=1 a response from server to client; both hash to the same key.
//! * `seq`: gen's probe sequence number (stream id in the top 8 bits). The first sighting
//!   is the request, the second the response (an echoing or forwarding DUT), a third is a
//!   duplicate.
//!
//! Invariants: the pending table never holds more than `max_pending` entries; an
//! unanswered request leaves the table in exactly one counted way (matched, `lost` when
//! older than the timeout or at the end, `evicted` when the table was full). Answered
//! entries stay for the duplicate window (`dup_window_ns`, at most the timeout) so that a
//! second response within it counts as a duplicate; later ones count as unmatched. The
//! window keeps the table small at high rates (only requests in flight plus recently
//! answered ones), which is what keeps matching fast.
//! All counters are u64; timestamps are u64 nanoseconds of the capture clock.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use profiles::wire::{WireError, dns, probe, udp};

/// How requests and responses are paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    Dns,
    Seq,
}

impl MatchMode {
    pub fn name(self) -> &'static str {
        match self {
            MatchMode::Dns => "dns",
            MatchMode::Seq => "seq",
        }
    }
}

/// Counters of everything the matcher saw. Cumulative, 64-bit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub frames: u64,
    pub requests: u64,
    pub responses: u64,
    pub matched: u64,
    pub lost: u64,
    pub unmatched_responses: u64,
    pub duplicates: u64,
    pub evicted: u64,
    /// Response timestamp earlier than its request's (clock steps, merged captures):
    /// matched with a response time of 0.
    pub negative_rtt: u64,
    /// Frames skipped: truncated or malformed Ethernet/IP/UDP.
    pub malformed: u64,
    /// Frames skipped: neither IPv4 nor IPv6 (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Frames skipped: IP but not UDP, an IP fragment, or UDP behind an IPv6 extension
    /// header (not parsed).
    pub not_udp: u64,
    /// Frames skipped: UDP without a DNS message (dns) or a probe (seq).
    pub not_matched_proto: u64,
}

impl Counters {
    /// Per-field difference `self - earlier` (for interval records).
    pub fn since(&self, e: &Counters) -> Counters {
        Counters {
            frames: self.frames - e.frames,
            requests: self.requests - e.requests,
            responses: self.responses - e.responses,
            matched: self.matched - e.matched,
            lost: self.lost - e.lost,
            unmatched_responses: self.unmatched_responses - e.unmatched_responses,
            duplicates: self.duplicates - e.duplicates,
            evicted: self.evicted - e.evicted,
            negative_rtt: self.negative_rtt - e.negative_rtt,
            malformed: self.malformed - e.malformed,
            not_ip: self.not_ip - e.not_ip,
            not_udp: self.not_udp - e.not_udp,
            not_matched_proto: self.not_matched_proto - e.not_matched_proto,
        }
    }
}

/// A matched pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Response time in ns (response ts - request ts, saturating at 0).
    pub rtt_ns: u64,
    /// DNS RCODE of the response (dns mode).
    pub rcode: Option<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    ts_ns: u64,
    answered: bool,
}

/// Keys are already well-mixed 64-bit hashes: hash them as themselves.
#[derive(Default)]
struct KeyHasher(u64);
impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// 64-bit mixing (a multiply-xorshift in the style of wyhash/splitmix).
#[inline]
fn mix(h: u64, v: u64) -> u64 {
    let x = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let x = (x ^ (x >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 32)
}

#[inline]
fn hash_bytes(mut h: u64, b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        h = mix(h, u64::from_le_bytes(a));
    }
    let rem = chunks.remainder();
    let mut a = [0u8; 8];
    a[..rem.len()].copy_from_slice(rem);
    mix(h, u64::from_le_bytes(a) ^ ((b.len() as u64) << 56))
}

/// Mixes an address into `h`, IPv4 and IPv6 apart (an IPv4 address and the IPv6
/// address with the same low bits hash differently).
#[inline]
fn mix_addr(h: u64, ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => mix(h, u64::from(a.to_bits())),
        IpAddr::V6(a) => {
            let b = a.to_bits();
            mix(mix(h ^ (1 << 63), (b >> 64) as u64), b as u64)
        }
    }
}

/// What one frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request(u64),
    Response(u64, Option<u8>),
    /// A probe (seq mode): key, stream, counter; request or response by sighting.
    Probe(u64, u8, u64),
}

fn classify(mode: MatchMode, frame: &[u8]) -> Result<Kind, WireError> {
    let u = udp::parse(frame)?;
    match mode {
        MatchMode::Dns => {
            let p = dns::Packet::new_checked(u.payload)?;
            let q = p.question()?;
            let response = p.is_response();
            let (client_ip, client_port, server_ip, server_port) = if response {
                (u.dst_ip, u.dst_port, u.src_ip, u.src_port)
            } else {
                (u.src_ip, u.src_port, u.dst_ip, u.dst_port)
            };
            let h = mix_addr(mix_addr(0x243F_6A88_85A3_08D3, client_ip), server_ip);
            let ports = (u64::from(client_port) << 48)
                | (u64::from(server_port) << 32)
                | (u64::from(p.id()) << 16);
            let types = (u64::from(q.qtype) << 16) | u64::from(q.qclass);
            let h = mix(mix(h, ports), types);
            let key = hash_bytes(h, q.name);
            Ok(if response {
                Kind::Response(key, Some(p.rcode().0))
            } else {
                Kind::Request(key)
            })
        }
        MatchMode::Seq => {
            let p = probe::Packet::new_checked(u.payload)?;
            // Seq mode: the caller decides request/response by sighting.
            let seq = p.seq();
            Ok(Kind::Probe(
                mix(0x1319_8A2E_0370_7344, seq),
                (seq >> probe::COUNTER_BITS) as u8,
                seq & ((1 << probe::COUNTER_BITS) - 1),
            ))
        }
    }
}

/// The matcher: a bounded pending table, a FIFO for timeouts, counters.
pub struct Matcher {
    mode: MatchMode,
    timeout_ns: u64,
    max_pending: usize,
    table: HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>,
    fifo: VecDeque<(u64, u64)>,
    /// Answered entries in answer order: (key, request ts, answer ts).
    answered: VecDeque<(u64, u64, u64)>,
    dup_window_ns: u64,
    counters: Counters,
    /// Latest timestamp seen (timeouts run on the capture clock).
    now_ns: u64,
    /// The probe (stream, counter) of the last response sighting in seq mode,
    /// matched or a duplicate, until taken.
    seq_response: Option<(u8, u64)>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("mode", &self.mode)
            .field("pending", &self.table.len())
            .finish()
    }
}

impl Matcher {
    /// `timeout_ns`: a request unanswered for longer is lost. `max_pending` >= 1.
    pub fn new(mode: MatchMode, timeout_ns: u64, max_pending: usize) -> Self {
        Self::with_dup_window(mode, timeout_ns, max_pending, timeout_ns)
    }

    /// As [`Matcher::new`], keeping answered requests for `dup_window_ns` (clamped to the
    /// timeout) to recognise duplicate responses.
    pub fn with_dup_window(
        mode: MatchMode,
        timeout_ns: u64,
        max_pending: usize,
        dup_window_ns: u64,
    ) -> Self {
        let max_pending = max_pending.max(1);
        let cap = max_pending.min(1 << 16);
        Matcher {
            mode,
            timeout_ns,
            max_pending,
            table: HashMap::with_capacity_and_hasher(cap, Default::default()),
            fifo: VecDeque::with_capacity(cap),
            answered: VecDeque::new(),
            dup_window_ns: dup_window_ns.min(timeout_ns),
            counters: Counters::default(),
            now_ns: 0,
            seq_response: None,
        }
    }

    /// Seq mode: the (stream, counter) of the probe the last frame answered, matched
    /// or a duplicate (taken once).
    pub fn take_seq_response(&mut self) -> Option<(u8, u64)> {
        self.seq_response.take()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    pub fn pending(&self) -> usize {
        self.table.len()
    }

    /// Expires what is older than the timeout at `now_ns` (also called without frames,
    /// so live captures age out requests when traffic stops).
    pub fn advance(&mut self, now_ns: u64) {
        if now_ns > self.now_ns {
            self.now_ns = now_ns;
        }
        let limit = self.now_ns.saturating_sub(self.timeout_ns);
        while let Some(&(key, ts)) = self.fifo.front() {
            if ts >= limit {
                break;
            }
            self.fifo.pop_front();
            self.retire(key, ts, false);
        }
        let limit = self.now_ns.saturating_sub(self.dup_window_ns);
        while let Some(&(key, ts, at)) = self.answered.front() {
            if at >= limit {
                break;
            }
            self.answered.pop_front();
            self.forget_answered(key, ts);
        }
    }

    fn forget_answered(&mut self, key: u64, ts: u64) {
        if let Some(e) = self.table.get(&key)
            && e.ts_ns == ts
            && e.answered
        {
            self.table.remove(&key);
        }
    }

    fn retire(&mut self, key: u64, ts: u64, evict: bool) {
        if let Some(e) = self.table.get(&key)
            && e.ts_ns == ts
        {
            if !e.answered {
                if evict {
                    self.counters.evicted += 1;
                } else {
                    self.counters.lost += 1;
                }
            }
            self.table.remove(&key);
        }
    }

    /// Feeds one frame captured at `ts_ns`. Returns the match when it completed a pair.
    pub fn on_frame(&mut self, ts_ns: u64, frame: &[u8]) -> Option<Match> {
        self.counters.frames += 1;
        self.advance(ts_ns);
        let kind = match classify(self.mode, frame) {
            Ok(k) => k,
            Err(e) => {
                match e {
                    WireError::NotIp => self.counters.not_ip += 1,
                    WireError::NotUdp | WireError::Fragment | WireError::Ipv6Extension => {
                        self.counters.not_udp += 1
                    }
                    WireError::Truncated | WireError::Malformed => {
                        // Truncated/malformed below UDP (DNS/probe) is "not our protocol";
                        // distinguish by whether UDP parsed.
                        if udp::parse(frame).is_ok() {
                            self.counters.not_matched_proto += 1
                        } else {
                            self.counters.malformed += 1
                        }
                    }
                    WireError::BadName | WireError::BadMagic => {
                        self.counters.not_matched_proto += 1
                    }
                }
                return None;
            }
        };
        match (self.mode, kind) {
            (MatchMode::Dns, Kind::Request(key)) => {
                self.counters.requests += 1;
                match self.table.get_mut(&key) {
                    // Retransmission of a request still waiting: keep the first timestamp.
                    Some(e) if !e.answered => self.counters.duplicates += 1,
                    // The key came round again after its answer (ID reuse): a new request.
                    Some(e) => {
                        *e = Entry {
                            ts_ns,
                            answered: false,
                        };
                        self.fifo.push_back((key, ts_ns));
                    }
                    None => self.insert(key, ts_ns),
                }
                None
            }
            (MatchMode::Dns, Kind::Response(key, rcode)) => {
                self.counters.responses += 1;
                self.answer(key, ts_ns, rcode)
            }
            (MatchMode::Seq, Kind::Probe(key, stream, counter)) => match self.table.get(&key) {
                None => {
                    self.counters.requests += 1;
                    self.insert(key, ts_ns);
                    None
                }
                Some(_) => {
                    self.counters.responses += 1;
                    self.seq_response = Some((stream, counter));
                    self.answer(key, ts_ns, None)
                }
            },
            // classify gives DNS kinds only in dns mode and probes only in seq mode.
            (MatchMode::Seq, _) | (MatchMode::Dns, Kind::Probe(..)) => None,
        }
    }

    fn insert(&mut self, key: u64, ts_ns: u64) {
        while self.table.len() >= self.max_pending {
            // Forget answered requests first (only duplicate detection suffers), then
            // evict the oldest unanswered one (counted).
            if let Some((k, t, _)) = self.answered.pop_front() {
                self.forget_answered(k, t);
                continue;
            }
            match self.fifo.pop_front() {
                Some((k, t)) => self.retire(k, t, true),
                None => break,
            }
        }
        self.table.insert(
            key,
            Entry {
                ts_ns,
                answered: false,
            },
        );
        self.fifo.push_back((key, ts_ns));
    }

    fn answer(&mut self, key: u64, ts_ns: u64, rcode: Option<u8>) -> Option<Match> {
        match self.table.get_mut(&key) {
            None => {
                self.counters.unmatched_responses += 1;
                None
            }
            Some(e) if e.answered => {
                self.counters.duplicates += 1;
                None
            }
            Some(e) => {
                e.answered = true;
                let req_ts = e.ts_ns;
                self.answered
                    .push_back((key, req_ts, ts_ns.max(self.now_ns)));
                self.counters.matched += 1;
                let rtt_ns = match ts_ns.checked_sub(req_ts) {
                    Some(v) => v,
                    None => {
                        self.counters.negative_rtt += 1;
                        0
                    }
                };
                Some(Match { rtt_ns, rcode })
            }
        }
    }

    /// End of capture: every request still unanswered is lost.
    pub fn finish(&mut self) {
        while let Some((k, t)) = self.fifo.pop_front() {
            self.retire(k, t, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use profiles::wire::dns;

    pub(crate) fn dns_frame(
        id: u16,
        response: bool,
        name: &str,
        client_port: u16,
        rcode: u8,
    ) -> Vec<u8> {
        let mut msg = vec![0u8; 12];
        msg[0..2].copy_from_slice(&id.to_be_bytes());
        let flags: u16 = if response {
            0x8180 | u16::from(rcode)
        } else {
            0x0100
        };
        msg[2..4].copy_from_slice(&flags.to_be_bytes());
        msg[4..6].copy_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(&dns::name_to_wire(name).expect("name"));
        msg.extend_from_slice(&[0, 1, 0, 1]);
        let (src, dst, sp, dp) = if response {
            ([198, 18, 0, 2], [198, 18, 0, 1], 53, client_port)
        } else {
            ([198, 18, 0, 1], [198, 18, 0, 2], client_port, 53)
        };
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .udp(sp, dp);
        let mut out = Vec::new();
        b.write(&mut out, &msg).expect("write");
        out
    }

    #[test]
    fn pairs_requests_and_responses() {
        let mut m = Matcher::new(MatchMode::Dns, 1_000_000_000, 1000);
        assert_eq!(
            m.on_frame(100, &dns_frame(1, false, "a.example", 1000, 0)),
            None
        );
        assert_eq!(
            m.on_frame(150, &dns_frame(2, false, "b.example", 1000, 0)),
            None
        );
        assert_eq!(
            m.on_frame(400, &dns_frame(2, true, "b.example", 1000, 3)),
            Some(Match {
                rtt_ns: 250,
                rcode: Some(3),
            })
        );
        assert_eq!(
            m.on_frame(500, &dns_frame(1, true, "a.example", 1000, 0)),
            Some(Match {
                rtt_ns: 400,
                rcode: Some(0),
            })
        );
        // Same ID, other name or other port: not a match.
        assert_eq!(
            m.on_frame(600, &dns_frame(3, false, "c.example", 1000, 0)),
            None
        );
        assert_eq!(
            m.on_frame(700, &dns_frame(3, true, "d.example", 1000, 0)),
            None
        );
        assert_eq!(
            m.on_frame(700, &dns_frame(3, true, "c.example", 1001, 0)),
            None
        );
        // A second response to an answered request is a duplicate.
        assert_eq!(
            m.on_frame(800, &dns_frame(1, true, "a.example", 1000, 0)),
            None
        );
        m.finish();
        let c = m.counters();
        assert_eq!(
            (
                c.requests,
                c.responses,
                c.matched,
                c.unmatched_responses,
                c.duplicates,
                c.lost
            ),
            (3, 5, 2, 2, 1, 1)
        );
    }

    #[test]
    fn timeout_and_eviction_are_counted() {
        let mut m = Matcher::new(MatchMode::Dns, 1000, 2);
        m.on_frame(0, &dns_frame(1, false, "a", 1, 0));
        m.on_frame(10, &dns_frame(2, false, "a", 1, 0));
        m.on_frame(20, &dns_frame(3, false, "a", 1, 0)); // evicts id 1
        assert_eq!(m.counters().evicted, 1);
        assert_eq!(m.pending(), 2);
        m.advance(1015); // id 2 (ts 10) is older than 1000 ns now
        assert_eq!(m.counters().lost, 1);
        assert_eq!(
            m.on_frame(1010, &dns_frame(3, true, "a", 1, 0)),
            Some(Match {
                rtt_ns: 990,
                rcode: Some(0),
            })
        );
        // Answer arriving after the timeout: unmatched.
        assert_eq!(m.on_frame(1100, &dns_frame(2, true, "a", 1, 0)), None);
        assert_eq!(m.counters().unmatched_responses, 1);
        m.finish();
        assert_eq!(m.counters().lost, 1);
    }

    #[test]
    fn duplicate_requests_keep_the_first_timestamp() {
        let mut m = Matcher::new(MatchMode::Dns, 1_000_000, 10);
        m.on_frame(0, &dns_frame(9, false, "x", 5, 0));
        m.on_frame(5, &dns_frame(9, false, "x", 5, 0));
        assert_eq!(
            m.on_frame(30, &dns_frame(9, true, "x", 5, 2)),
            Some(Match {
                rtt_ns: 30,
                rcode: Some(2),
            })
        );
        assert_eq!(m.counters().duplicates, 1);
    }

    #[test]
    fn duplicate_window_and_id_reuse() {
        // Remember answers for 100 ns: a second answer within it is a duplicate, later
        // ones are unmatched; the same key after its answer is a new request.
        let mut m = Matcher::with_dup_window(MatchMode::Dns, 1_000_000, 100, 100);
        m.on_frame(0, &dns_frame(7, false, "k", 1, 0));
        assert!(m.on_frame(10, &dns_frame(7, true, "k", 1, 0)).is_some());
        m.on_frame(50, &dns_frame(7, true, "k", 1, 0));
        assert_eq!(m.counters().duplicates, 1);
        m.on_frame(500, &dns_frame(7, true, "k", 1, 0));
        assert_eq!(m.counters().unmatched_responses, 1);
        m.on_frame(600, &dns_frame(7, false, "k", 1, 0));
        assert_eq!(
            m.on_frame(700, &dns_frame(7, true, "k", 1, 0)),
            Some(Match {
                rtt_ns: 100,
                rcode: Some(0),
            })
        );
        // Within the window, a new request with the answered key is also a new request.
        m.on_frame(720, &dns_frame(7, false, "k", 1, 0));
        assert_eq!(
            m.on_frame(750, &dns_frame(7, true, "k", 1, 0)),
            Some(Match {
                rtt_ns: 30,
                rcode: Some(0),
            })
        );
        m.finish();
        let c = m.counters();
        assert_eq!(
            (
                c.requests,
                c.matched,
                c.lost,
                c.duplicates,
                c.unmatched_responses
            ),
            (3, 3, 0, 1, 1)
        );
        assert!(m.pending() == 0);
    }

    #[test]
    fn skips_what_is_not_dns() {
        let mut m = Matcher::new(MatchMode::Dns, 1000, 10);
        let f = dns_frame(1, false, "a", 1, 0);
        for cut in 0..f.len() {
            assert_eq!(m.on_frame(0, &f[..cut]), None);
        }
        let c = *m.counters();
        assert_eq!(c.requests, 0);
        assert_eq!(c.malformed + c.not_matched_proto, f.len() as u64);
        let mut arp = f.clone();
        arp[12] = 0x08;
        arp[13] = 0x06;
        m.on_frame(0, &arp);
        assert_eq!(m.counters().not_ip, 1);
    }

    #[test]
    fn seq_mode_first_sighting_is_the_request() {
        let mk = |seq: u64| {
            let mut pl = [0u8; probe::LEN];
            probe::Repr {
                stream: (seq >> 56) as u8,
                counter: seq & ((1 << 56) - 1),
                tx_ns: 7,
            }
            .emit(&mut probe::Packet::new_unchecked(&mut pl[..]));
            let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
                .udp(9, 9);
            let mut out = Vec::new();
            b.write(&mut out, &pl).expect("write");
            out
        };
        let mut m = Matcher::new(MatchMode::Seq, 1_000_000, 10);
        assert_eq!(m.on_frame(10, &mk(1)), None);
        assert_eq!(m.on_frame(20, &mk(2)), None);
        assert_eq!(
            m.on_frame(25, &mk(1)),
            Some(Match {
                rtt_ns: 15,
                rcode: None,
            })
        );
        assert_eq!(m.on_frame(26, &mk(1)), None);
        m.finish();
        let c = m.counters();
        assert_eq!(
            (c.requests, c.responses, c.matched, c.duplicates, c.lost),
            (2, 2, 1, 1, 1)
        );
    }
}
