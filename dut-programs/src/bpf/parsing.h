/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Bounds-checked header parsing in the style of xdp-tools' parsing_helpers.h:
 * a cursor moves over the frame, each parse_* checks `pos + size <=
 * data_end` (what the verifier needs) before it hands out a header pointer,
 * and returns the next protocol or -1. Shared by the BPF programs and the
 * host shim, so it only uses what both C environments have. */
#ifndef DUT_PARSING_H
#define DUT_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/in.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define dut_htons(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define dut_ntohs(x) ((__u16)__builtin_bswap16((__u16)(x)))
#else
#define dut_htons(x) ((__u16)(x))
#define dut_ntohs(x) ((__u16)(x))
#endif

struct hdr_cursor {
	void *pos;
};

/* Ethernet header; returns the EtherType (network order) or -1. No VLANs:
 * tagged frames are not ours. */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end,
					struct ethhdr **eth)
{
	struct ethhdr *h = nh->pos;

	if ((void *)(h + 1) > data_end)
		return -1;
	nh->pos = h + 1;
	*eth = h;
	return h->h_proto;
}

/* IPv4 header including options; returns the protocol or -1. */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       struct iphdr **iph)
{
	struct iphdr *h = nh->pos;
	int len;

	if ((void *)(h + 1) > data_end)
		return -1;
	if (h->version != 4 || h->ihl < 5)
		return -1;
	len = h->ihl * 4;
	if (nh->pos + len > data_end)
		return -1;
	nh->pos += len;
	*iph = h;
	return h->protocol;
}

/* UDP header; returns the UDP length from the header or -1. */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end,
					struct udphdr **udph)
{
	struct udphdr *h = nh->pos;

	if ((void *)(h + 1) > data_end)
		return -1;
	nh->pos = h + 1;
	*udph = h;
	return dut_ntohs(h->len);
}

/* One's complement sum of the 20-byte IPv4 header (no options), folded and
 * inverted: 0 when the header's checksum is right, the checksum to store
 * when the checksum field is zero. */
static __always_inline __u16 ipv4_csum20(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
