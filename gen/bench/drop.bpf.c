// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The bench's stand-in DUT until dut-programs lands: drop every frame.
 * Built by run.sh with clang and attached with `ip link set ... xdpdrv obj`. */
#include <linux/bpf.h>
#define SEC(name) __attribute__((section(name), used))

SEC("xdp")
int bench_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
