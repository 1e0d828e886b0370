// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* live_ref: the bench's reference live-frames sender (see live_ref.bpf.c).
 *
 * One thread, no pacing: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, batch
 * size 64, on the template frame given in hex, for a duration (SIGALRM ends the
 * run: the kernel's run loop returns EINTR on a pending signal) or a count.
 *
 *   live_ref -i gen0 -x <frame hex> -v 26:4:198.18.1.0:256 -v 34:2:1024:256 -d 5 [-c 0] [-R] [-T]
 *
 * -v OFFSET:WIDTH:MIN:COUNT  a varying field (even offset, width 2 or 4): frame n
 *                            carries MIN + n % COUNT there (MIN may be dotted IPv4)
 * -R  restore the whole template in every frame   -T  trim one pad byte per frame
 * -d SECS | -n COUNT, -c CPU (pin), -b BATCH (64)
 * -P  plain test run (not live): the program alone, run COUNT times on one buffer,
 *     nothing sent; kernel_ns_per_run is then its cost (not with -T: the trim
 *     would accumulate over the runs on the one buffer)
 * Prints one JSON line: frames the program returned XDP_TX for, seconds, rate. */
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
/* As in live_ref.bpf.c. */
struct vary {
	__u32 offset, width, min, count, in_ip, pad;
};
#include "live_ref.skel.h"

#define BPF_F_TEST_XDP_LIVE_FRAMES_ (1U << 1)
#define MAX_FRAME 128

static volatile sig_atomic_t expired;
static void on_alarm(int sig) { (void)sig; expired = 1; }

static void die(const char *m) { fprintf(stderr, "error: live_ref: %s\n", m); exit(1); }

static unsigned long long sum16(const unsigned char *p, size_t len)
{
	unsigned long long s = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		unsigned short w;

		memcpy(&w, p + i, 2); /* native order, as the program reads */
		s += w;
	}
	if (len & 1) {
		unsigned char last[2] = { p[len - 1], 0 };
		unsigned short w;

		memcpy(&w, last, 2);
		s += w;
	}
	return s;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *iface = NULL, *hex = NULL;
	unsigned char frame[MAX_FRAME + 1] = { 0 }, z[MAX_FRAME] = { 0 };
	unsigned int vo[4], vw[4], vmin[4], vcnt[4], nv = 0, len = 0, batch = 64;
	int restore = 0, trim = 0, cpu = -1, opt, err, plain = 0;
	double secs = 0;
	unsigned long long count = 0;

	while ((opt = getopt(argc, argv, "i:x:v:d:n:c:b:RTP")) != -1) {
		switch (opt) {
		case 'i': iface = optarg; break;
		case 'x': hex = optarg; break;
		case 'v': {
			char a[64];
			struct in_addr ia;

			if (nv == 4)
				die("at most 4 -v");
			if (sscanf(optarg, "%u:%u:%63[^:]:%u", &vo[nv], &vw[nv], a, &vcnt[nv]) != 4)
				die("-v OFFSET:WIDTH:MIN:COUNT");
			if (inet_pton(AF_INET, a, &ia) == 1)
				vmin[nv] = ntohl(ia.s_addr);
			else
				vmin[nv] = strtoul(a, NULL, 0);
			if ((vo[nv] & 1) || (vw[nv] != 2 && vw[nv] != 4) || !vcnt[nv] || vo[nv] + vw[nv] > 60)
				die("-v: even offset, width 2 or 4, count > 0, inside a minimum frame");
			nv++;
			break;
		}
		case 'd': secs = atof(optarg); break;
		case 'n': count = strtoull(optarg, NULL, 0); break;
		case 'c': cpu = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		case 'P': plain = 1; break;
		case 'R': restore = 1; break;
		case 'T': trim = 1; break;
		default: die("usage: see the header of gen/bench/live_ref.c");
		}
	}
	if (!iface || !hex || (secs <= 0 && !count))
		die("need -i IFACE -x HEX and -d SECS or -n COUNT");
	for (len = 0; hex[2 * len] && hex[2 * len + 1]; len++) {
		if (len == MAX_FRAME)
			die("frame longer than 128 bytes");
		if (sscanf(hex + 2 * len, "%2hhx", &frame[len]) != 1)
			die("bad hex");
	}
	if (len < 42 || (len & 3) || frame[12] != 0x08 || frame[13] != 0 || frame[23] != 17)
		die("template must be Ethernet/IPv4 (no options)/UDP, length a multiple of 4");

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

	/* Checksum bases: the template with its checksums and varying words zeroed. */
	memcpy(z, frame, len);
	z[24] = z[25] = z[40] = z[41] = 0;
	for (unsigned int i = 0; i < nv; i++)
		memset(z + vo[i], 0, vw[i]);
	unsigned int ulen = (frame[38] << 8) | frame[39];
	if (34 + ulen > len)
		die("UDP length past the frame");
	unsigned char pseudo[12];
	memcpy(pseudo, z + 26, 8);
	pseudo[8] = 0;
	pseudo[9] = 17;
	pseudo[10] = ulen >> 8;
	pseudo[11] = ulen & 0xff;

	struct live_ref_bpf *skel = live_ref_bpf__open();
	if (!skel)
		die("opening the BPF object");
	skel->rodata->nvary = nv;
	for (unsigned int i = 0; i < nv; i++) {
		skel->rodata->vary[i].offset = vo[i];
		skel->rodata->vary[i].width = vw[i];
		skel->rodata->vary[i].min = vmin[i];
		skel->rodata->vary[i].count = vcnt[i];
		skel->rodata->vary[i].in_ip = vo[i] >= 14 && vo[i] < 34;
	}
	skel->rodata->restore = restore;
	skel->rodata->trim = trim;
	memcpy((void *)skel->rodata->tmpl, frame, len);
	skel->rodata->tmpl_len = len;
	skel->rodata->ip_base = sum16(z + 14, 20);
	skel->rodata->udp_base = sum16(pseudo, 12) + sum16(z + 34, ulen);
	if ((err = live_ref_bpf__load(skel))) {
		fprintf(stderr, "error: live_ref: loading: %s\n", strerror(-err));
		return 1;
	}
	if (count)
		skel->data->limit = count;

	struct xdp_md md = { .data_end = len + trim, .ingress_ifindex = ifindex, .rx_queue_index = 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = frame, .data_size_in = len + trim,
		.ctx_in = &md, .ctx_size_in = sizeof(md),
		.flags = plain ? 0 : BPF_F_TEST_XDP_LIVE_FRAMES_, .batch_size = plain ? 0 : batch);
	int fd = bpf_program__fd(skel->progs.live_ref);

	struct sigaction sa = { .sa_handler = on_alarm };
	sigaction(SIGALRM, &sa, NULL);
	double t0 = now(), timed_ns = 0, timed_runs = 0;
	if (secs > 0) {
		struct itimerval it = { .it_value = { (time_t)secs, (long)((secs - (time_t)secs) * 1e6) } };

		setitimer(ITIMER_REAL, &it, NULL);
	}
	while (!expired) {
		unsigned long long left = count ? count - skel->bss->sent : INT_MAX;

		if (count && !left)
			break;
		o.repeat = left > INT_MAX ? INT_MAX : left;
		err = bpf_prog_test_run_opts(fd, &o);
		if (err && errno != EINTR) {
			fprintf(stderr, "error: live_ref: BPF_PROG_RUN: %s\n", strerror(errno));
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
	unsigned long long n = skel->bss->sent;

	printf("{\"sent\":%llu,\"secs\":%.3f,\"pps\":%.0f,\"restore\":%d,\"trim\":%d,\"batch\":%u,\"kernel_ns_per_run\":%.1f,\"prog_ns_per_run\":%.1f}\n",
	       n, t, n / t, restore, trim, batch, timed_runs ? timed_ns / timed_runs : -1.0, prog_ns);
	live_ref_bpf__destroy(skel);
	return 0;
}
