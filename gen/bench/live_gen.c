// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* live_gen: gen's own XDP program (gen/src/bpf/gen_live.bpf.c, or a variant of
 * it) driven by live_ref's loop instead of by gen. Same options as live_ref
 * (-i -x -v -d -n -c -b -P; no -R/-T: the program always restores and trims), frame
 * passed with one pad byte as gen does, rodata set as gen sets it for an unpaced
 * single queue of a profile whose varying fields are `increment` with step 1.
 * Splits gen's overhead over the reference into the program's share (live_gen vs
 * live_ref -R -T) and the rest (gen vs live_gen: gen's user space, its TX-count
 * tracepoint programs). Build: build-ref.sh (GEN_LIVE_SRC= a variant to ablate).
 * -P (plain test run) only with a variant whose trim is cut out (ablate.sh). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* As in gen_live.bpf.c (build-ref.sh defines GEN_LIVE_BASES for a program with
 * the per-run constants in rodata: patch flags, checksum bases). */
struct patch {
	__u32 offset, width, kind, nvals;
	__u64 min, span, arg;
#ifdef GEN_LIVE_BASES
	__u64 rstep;
	__u32 flags, shift;
#endif
};
struct qstate {
	__u64 k, limit, t0_ns, gap_fp, next_fp, rng, deadline_ns, idle;
#ifdef GEN_LIVE_LAST_NS
	__u64 last_ns;
#endif
};
#include "gen_live.skel.h"

#define BPF_F_TEST_XDP_LIVE_FRAMES_ (1U << 1)

static volatile sig_atomic_t expired;
static void on_alarm(int sig) { (void)sig; expired = 1; }
static void die(const char *m) { fprintf(stderr, "error: live_gen: %s\n", m); exit(1); }
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *iface = NULL, *hex = NULL;
	unsigned char frame[561] = { 0 };
	unsigned int vo[6], vw[6], nv = 0, len = 0, batch = 64;
	unsigned long long vmin[6], vcnt[6], count = 0;
	int cpu = -1, opt, err, plain = 0;
	double secs = 0;

	while ((opt = getopt(argc, argv, "i:x:v:d:n:c:b:P")) != -1) {
		switch (opt) {
		case 'i': iface = optarg; break;
		case 'x': hex = optarg; break;
		case 'v': {
			char a[64];
			struct in_addr ia;

			if (nv == 6)
				die("at most 6 -v");
			if (sscanf(optarg, "%u:%u:%63[^:]:%llu", &vo[nv], &vw[nv], a, &vcnt[nv]) != 4)
				die("-v OFFSET:WIDTH:MIN:COUNT");
			vmin[nv] = inet_pton(AF_INET, a, &ia) == 1 ? ntohl(ia.s_addr) : strtoull(a, NULL, 0);
			nv++;
			break;
		}
		case 'd': secs = atof(optarg); break;
		case 'n': count = strtoull(optarg, NULL, 0); break;
		case 'c': cpu = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		case 'P': plain = 1; break;
		default: die("usage: see the header of gen/bench/live_gen.c");
		}
	}
	if (!iface || !hex || (secs <= 0 && !count))
		die("need -i IFACE -x HEX and -d SECS or -n COUNT");
	for (len = 0; hex[2 * len] && hex[2 * len + 1]; len++) {
		if (len == 560 || sscanf(hex + 2 * len, "%2hhx", &frame[len]) != 1)
			die("bad hex or frame longer than 560 bytes");
	}
	unsigned int ifindex = if_nametoindex(iface);
	if (!ifindex)
		die("no such interface");
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			die("sched_setaffinity");
	}
	struct gen_live_bpf *skel = gen_live_bpf__open();
	if (!skel)
		die("opening the BPF object");
	for (unsigned int i = 0; i < nv; i++) {
		struct patch p = { .offset = vo[i], .width = vw[i], .kind = 0, .min = vmin[i], .span = vcnt[i], .arg = 1 };

		memcpy((void *)&skel->rodata->patches[i], &p, sizeof(p));
	}
#ifdef GEN_LIVE_BASES
	{
		/* As gen/src/live.rs computes them (one queue, increment, step 1). */
		unsigned int ul = 34 + ((frame[38] << 8) | frame[39]), ov = 0, i, j, e;
		__u64 ipb = 0xffff - ((frame[24] << 8) | frame[25]);
		__u64 udpb = 0xffff - ((frame[40] << 8) | frame[41]);
		unsigned int edges[4] = { 14, 26, 34, ul };

		for (i = 0; i < nv; i++)
			for (j = 0; j < i; j++)
				if (vo[i] < vo[j] + vw[j] && vo[j] < vo[i] + vw[i])
					ov = 1;
		for (i = 0; i < nv; i++) {
			struct patch *p = (struct patch *)&skel->rodata->patches[i];
			unsigned int lo = vo[i], hi = vo[i] + vw[i], st = 0;
			__u64 c = 0;

			for (e = 0; e < 4; e++)
				st |= lo < edges[e] && hi > edges[e];
			for (j = lo; j < hi; j++)
				c += (j & 1) ? frame[j] : frame[j] << 8;
			c = 0xffff - c % 0xffff;
			p->shift = (hi & 1) ? 8 : 0;
			p->rstep = vcnt[i] > 1 ? 1 : 0;
			if (ov || st || (vw[i] > 7 && p->shift))
				p->flags = 1;
			else if (lo >= 14 && hi <= ul) {
				if (hi <= 34) {
					p->flags |= 2;
					ipb += c;
				}
				if (lo >= 26) {
					p->flags |= 4;
					udpb += c;
				}
			}
		}
		skel->rodata->ip_base = ipb;
		skel->rodata->udp_base = udpb;
	}
#endif
	skel->rodata->npatches = nv;
	skel->rodata->nqueues = 1;
	skel->rodata->queue_id = 0;
	skel->rodata->varies = nv > 0;
	memcpy((void *)skel->rodata->tmpl, frame, len);
	skel->rodata->tmpl_len = len;
#ifdef GEN_LIVE_OFFSETS
	/* Offsets in rodata (VLAN tags, TCP): the defaults are untagged UDP's. */
	skel->rodata->l4_len = (frame[38] << 8) | frame[39];
#else
	skel->rodata->udp_len = (frame[38] << 8) | frame[39];
#endif
	if ((err = gen_live_bpf__load(skel))) {
		fprintf(stderr, "error: live_gen: loading: %s\n", strerror(-err));
		return 1;
	}
	struct qstate st = { .limit = count ? count : ~0ULL };
	__u32 key = 0;
	if (bpf_map__update_elem(skel->maps.qstate, &key, sizeof(key), &st, sizeof(st), 0))
		die("qstate");

	struct xdp_md md = { .data_end = len + 1, .ingress_ifindex = ifindex, .rx_queue_index = 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = frame, .data_size_in = len + 1,
		.ctx_in = &md, .ctx_size_in = sizeof(md),
		.flags = plain ? 0 : BPF_F_TEST_XDP_LIVE_FRAMES_, .batch_size = plain ? 0 : batch);
	int fd = bpf_program__fd(skel->progs.gen_live);
	struct sigaction sa = { .sa_handler = on_alarm };

	sigaction(SIGALRM, &sa, NULL);
	double t0 = now(), timed_ns = 0, timed_runs = 0;
	if (secs > 0) {
		struct itimerval it = { .it_value = { (time_t)secs, (long)((secs - (time_t)secs) * 1e6) } };

		setitimer(ITIMER_REAL, &it, NULL);
	}
	for (;;) {
		bpf_map__lookup_elem(skel->maps.qstate, &key, sizeof(key), &st, sizeof(st), 0);
		if (expired || (count && st.k >= count))
			break;
		o.repeat = count ? (int)(count - st.k) : INT_MAX;
		err = bpf_prog_test_run_opts(fd, &o);
		if (err && errno != EINTR) {
			fprintf(stderr, "error: live_gen: BPF_PROG_RUN: %s\n", strerror(errno));
			return 1;
		}
		if (!err) { /* the kernel's own timer (not on EINTR): ns per run, time in cond_resched excluded */
			timed_ns += (double)o.duration * o.repeat;
			timed_runs += o.repeat;
		}
	}
	double t = now() - t0;
	/* The program's own average run time when kernel.bpf_stats_enabled=1. */
	struct bpf_prog_info info = { 0 };
	__u32 ilen = sizeof(info);
	double prog_ns = -1;

	if (!bpf_prog_get_info_by_fd(fd, &info, &ilen) && info.run_cnt)
		prog_ns = (double)info.run_time_ns / info.run_cnt;

	printf("{\"sent\":%llu,\"secs\":%.3f,\"pps\":%.0f,\"batch\":%u,\"kernel_ns_per_run\":%.1f,\"prog_ns_per_run\":%.1f}\n",
	       (unsigned long long)st.k, t, st.k / t, batch, timed_runs ? timed_ns / timed_runs : -1.0, prog_ns);
	gen_live_bpf__destroy(skel);
	return 0;
}
