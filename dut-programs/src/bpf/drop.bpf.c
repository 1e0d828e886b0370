// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* drop: count, then XDP_DROP.
 * The logic lives in logic.h, shared with the user-space shim. */
#include "logic.h"

SEC("xdp")
int dut_drop(struct xdp_md *ctx)
{
	return dut_run_drop(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
