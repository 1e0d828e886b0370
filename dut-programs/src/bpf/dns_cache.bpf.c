// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* dns_cache: answer DNS queries (IPv4 or IPv6) from the dns_cache hash map (A or AAAA record on a hit, NXDOMAIN on a miss).
 * The logic lives in logic.h, shared with the user-space shim. */
#define DUT_WITH_CACHE
#include "logic.h"

SEC("xdp")
int dut_dns_cache(struct xdp_md *ctx)
{
	return dut_run_dns_cache(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
