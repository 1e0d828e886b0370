// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The one placeholder XDP program (xdp-layer/src/placeholder.rs): pass every
 * frame to the stack. The lab attaches it to every veth end, because veth
 * silently drops XDP_TX'd and redirected frames unless the receiving end has
 * an XDP program; every tool that replaces it puts it back. Every tool treats
 * a program named xdp_pass as a placeholder it may replace without --force. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
