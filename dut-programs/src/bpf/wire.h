/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The structs the DUT programs share with user space: per-CPU counters,
 * the install-time configuration (rodata) and the DNS cache's key/value.
 *
 * Included by every *.bpf.c (through logic.h) and by the host shim
 * (src/shim/shim.c). The Rust side reads counters as an array of u64 in
 * exactly this order (`dut_programs::counters::NAMES`): append new counters
 * at the end, never reorder. */
#ifndef DUT_WIRE_H
#define DUT_WIRE_H

#include <linux/types.h>

/* Longest question name (wire format, terminating zero included) the cache
 * handles; longer names are counted in `too_long` and passed. 32 bytes keep
 * a full 36^4 set at about 260 MB of kernel memory (bpftool's memlock,
 * with 44-byte values). */
#define DNS_KEY_LEN 32
/* Length of the compressed A record appended to a cache hit on an A question. */
#define DNS_RECORD_LEN 16
/* Length of the compressed AAAA record appended to a hit on an AAAA question. */
#define DNS_RECORD6_LEN 28
/* Default capacity of the cache map: the large set, 36^4 names. */
#define DNS_CACHE_ENTRIES 1679616
/* Most checksum rounds the checksum program accepts. */
#define DUT_MAX_CHECKSUMS 1000000

/* One cache line per CPU of counters; all are u64 and cumulative. */
struct dut_counters {
	__u64 packets;      /* frames seen */
	__u64 bytes;        /* their lengths (no FCS) */
	__u64 pass;         /* verdicts: XDP_PASS */
	__u64 drop;         /*           XDP_DROP */
	__u64 tx;           /*           XDP_TX */
	__u64 redirect;     /*           XDP_REDIRECT */
	__u64 aborted;      /*           XDP_ABORTED */
	__u64 parse_errors; /* malformed frames (truncated, bad lengths, bad names) */
	__u64 not_tenant;   /* outside the --only-dst prefix: passed untouched */
	__u64 not_handled;  /* well-formed but not ours (not IPv4/UDP/53 query, ...) */
	__u64 answers;      /* DNS responses built */
	__u64 hits;         /* dns-cache: name found */
	__u64 misses;       /* dns-cache: name not found (NXDOMAIN) */
	__u64 too_long;     /* dns-cache: name longer than DNS_KEY_LEN: passed */
	__u64 checksums;    /* checksum: header checksums computed */
	__u64 checksum_bad; /* checksum: frames whose IPv4 header checksum was wrong */
} __attribute__((aligned(64)));

#define DUT_CFG_TENANT 1u  /* only process IPv4 frames to tenant_addr/tenant_mask */
#define DUT_CFG_TENANT6 2u /* only process IPv6 frames to tenant6_addr/tenant6_mask */

/* Capacity of the syn-filter allow-list (LPM trie; no preallocation). */
#define SYN_ALLOW_ENTRIES 65536

/* syn-filter allow-list key (BPF_MAP_TYPE_LPM_TRIE): prefix length, then
 * the IPv4 address in network byte order. The value is one byte (1). */
struct syn_allow_key {
	__u32 prefixlen;
	__u32 addr;
};

/* syn-filter IPv6 allow-list key (the `syn_allow6` LPM trie): prefix
 * length, then the 16-byte IPv6 address in network byte order. */
struct syn_allow6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Install-time configuration, `const volatile` rodata of every program. */
struct dut_config {
	__u32 flags;       /* DUT_CFG_* */
	__u32 tenant_addr; /* network byte order, already masked */
	__u32 tenant_mask; /* network byte order */
	__u32 checksums;   /* checksum: rounds per frame */
	__u32 tenant6_addr[4]; /* IPv6 guard: network byte order, already masked */
	__u32 tenant6_mask[4]; /* network byte order */
};

/* dns-cache key: the question name in wire format, zero padded. */
struct dns_key {
	__u8 name[DNS_KEY_LEN];
};

/* dns-cache value: the name's answer records, each with its owner as a
 * pointer to offset 12: the A record (A and ANY questions) and the AAAA
 * record (AAAA questions). */
struct dns_value {
	__u8 record[DNS_RECORD_LEN];
	__u8 record6[DNS_RECORD6_LEN];
};

#endif
