// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* syn_filter: drop TCP SYNs whose IPv4 (IPv6) source is not in the syn_allow (syn_allow6) LPM trie (XDP_DROP); pass the rest.
 * The logic lives in logic.h, shared with the user-space shim. */
#define DUT_WITH_ALLOW
#include "logic.h"

SEC("xdp")
int dut_syn_filter(struct xdp_md *ctx)
{
	return dut_run_syn_filter(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
