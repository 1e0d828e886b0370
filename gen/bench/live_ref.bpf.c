// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The bench's reference live-frames sender (the XDP half; live_ref.c is the rest).
 *
 * The smallest program that sends the same frames as gen's xdp-live engine: frame n
 * is the template with each varying field i set to min_i + n % count_i (the
 * profiles' `increment` with step 1, e.g. min-multi-flow's source address and
 * source port), the IPv4 header checksum and the UDP checksum written from sums
 * that user space precomputed over the template without the varying words (so one
 * addition per varying 16-bit word, no pass over the datagram). Returns XDP_TX.
 *
 * Fast variant (restore = trim = 0): writes only the varying fields and the two
 * checksums, trusting the recycled page to still hold the template elsewhere (true
 * against a DUT that drops). Correct variant (restore = trim = 1): what gen must do
 * since issue 9 -- copy the whole template over the page first and trim one pad
 * byte (bpf_xdp_adjust_tail -1), which makes the kernel rebuild the xdp_frame from
 * the context after every run. Each knob can be set alone to split the cost. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_VARY 4
#define MAX_WORDS 16 /* template up to 128 bytes */
#define IP_CSUM_AT 24
#define UDP_CSUM_AT 40

struct vary {
	__u32 offset; /* even */
	__u32 width;  /* 2 or 4 */
	__u32 min;
	__u32 count;
	__u32 in_ip;  /* the field is under the IPv4 header checksum */
	__u32 pad;
};

const volatile struct vary vary[MAX_VARY] = {};
const volatile __u32 nvary = 0;
const volatile __u32 restore = 0;
const volatile __u32 trim = 0;
const volatile __u64 tmpl[MAX_WORDS] = {};
const volatile __u32 tmpl_len = 0; /* multiple of 4 */
/* One's complement sums (not folded) of the IPv4 header and of the UDP pseudo
 * header + datagram, each without its checksum and without the varying words. */
const volatile __u64 ip_base = 0;
const volatile __u64 udp_base = 0;

__u64 sent = 0;
__u64 limit = ~0ULL;

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

SEC("xdp")
int live_ref(struct xdp_md *ctx)
{
	void *data, *end;
	__u64 n = sent, sip = ip_base, sudp = udp_base;
	__u32 i;

	if (n >= limit)
		return XDP_DROP;
	sent = n + 1;
	if (trim && bpf_xdp_adjust_tail(ctx, -1))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + UDP_CSUM_AT + 2 > end)
		return XDP_ABORTED;
	if (restore) {
		for (i = 0; i < MAX_WORDS; i++) {
			if (i * 8 + 8 > tmpl_len)
				break;
			if (data + i * 8 + 8 > end)
				return XDP_ABORTED;
			*(__u64 *)(data + i * 8) = tmpl[i];
		}
		if (tmpl_len & 4) {
			__u32 at = (tmpl_len & ~7u) & 127;

			if (data + at + 4 > end)
				return XDP_ABORTED;
			*(__u32 *)(data + at) = (__u32)tmpl[at / 8];
		}
	}
	for (i = 0; i < MAX_VARY; i++) {
		__u32 v, off;
		__u8 *p;

		if (i >= nvary)
			break;
		v = vary[i].min + (__u32)(n % vary[i].count);
		off = vary[i].offset & 127;
		p = data + off;
		if ((void *)(p + 4) > end)
			return XDP_ABORTED;
		if (vary[i].width == 4) {
			p[0] = v >> 24;
			p[1] = v >> 16;
			p[2] = v >> 8;
			p[3] = v;
			sudp += *(__u16 *)p + *(__u16 *)(p + 2);
			if (vary[i].in_ip)
				sip += *(__u16 *)p + *(__u16 *)(p + 2);
		} else {
			p[0] = v >> 8;
			p[1] = v;
			sudp += *(__u16 *)p;
			if (vary[i].in_ip)
				sip += *(__u16 *)p;
		}
	}
	{
		__u16 c;

		*(__u16 *)(data + IP_CSUM_AT) = ~fold(sip);
		c = ~fold(sudp);
		*(__u16 *)(data + UDP_CSUM_AT) = c ? c : 0xffff;
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
