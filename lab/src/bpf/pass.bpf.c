// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The lab's default XDP program: pass every frame to the stack.
 *
 * Attached to every veth end so that veth accepts XDP_TX'd and redirected
 * frames from its peer (it silently drops them when the receiving end has
 * no XDP program). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
