// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* dns_ping: answer every DNS query with NXDOMAIN (XDP_TX); everything else XDP_PASS.
 * The logic lives in logic.h, shared with the user-space shim. */
#include "logic.h"

SEC("xdp")
int dut_dns_ping(struct xdp_md *ctx)
{
	return dut_run_dns_ping(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
