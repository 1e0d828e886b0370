// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The host build of logic.h: the same per-packet code as the XDP programs,
 * run by the user-space execution point on AF_XDP frames and by the tests
 * that compare it with BPF_PROG_TEST_RUN byte for byte. */
#define DUT_HOST
#include "../bpf/logic.h"

/* Program numbers, as in dut_programs::Program::shim_id. */
enum { SHIM_DROP = 0, SHIM_CHECKSUM = 1, SHIM_DNS_PING = 2, SHIM_DNS_CACHE = 3, SHIM_SYN_FILTER = 4 };

/* Runs program `prog` on ctx's frame; returns the XDP verdict (ctx->data_end
 * moves when the frame is resized), or -1 for an unknown program. */
int dut_shim_run(int prog, struct dut_hctx *ctx)
{
	switch (prog) {
	case SHIM_DROP:
		return dut_run_drop(ctx);
	case SHIM_CHECKSUM:
		return dut_run_checksum(ctx);
	case SHIM_DNS_PING:
		return dut_run_dns_ping(ctx);
	case SHIM_DNS_CACHE:
		return dut_run_dns_cache(ctx);
	case SHIM_SYN_FILTER:
		return dut_run_syn_filter(ctx);
	default:
		return -1;
	}
}

unsigned long dut_shim_counters_size(void)
{
	return sizeof(struct dut_counters);
}
