// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The placeholder `dut remove` puts back: pass every frame. Named xdp_pass
 * like the lab's, so every tool treats it as a placeholder. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
