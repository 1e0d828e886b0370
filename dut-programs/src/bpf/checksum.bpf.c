// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* checksum: compute the IPv4 header checksum (IPv6: the sum over its first 20 bytes) N times (rodata dut_cfg.checksums, bpf_loop), then XDP_DROP.
 * The logic lives in logic.h, shared with the user-space shim. */
#include "logic.h"

SEC("xdp")
int dut_checksum(struct xdp_md *ctx)
{
	return dut_run_checksum(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
