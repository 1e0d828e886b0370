// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* What the kernel did with the frames of gen's xdp-live engine.
 *
 * The live-frames run turns each XDP_TX verdict into a redirect to the same
 * device; the frame leaves through the driver's ndo_xdp_xmit in a bulk flush,
 * and the kernel reports the outcome of every flush in the xdp_devmap_xmit
 * tracepoint (sent, drops, err) and of every failed redirect in xdp_redirect_err.
 * A verdict is not a departure: these are. Counted per thread (the queue thread
 * that ran BPF_PROG_RUN flushes in its own context), filtered to our process and
 * to our device (ifindex and network-namespace cookie: ifindexes repeat across
 * namespaces, and a DUT's redirect can be flushed in our thread's softirq).
 *
 * raw tracepoints need no tracefs; the one kernel struct field read (the device's
 * ifindex and namespace cookie) is relocated by CO-RE against the running kernel's
 * BTF. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct net {
	__u64 net_cookie;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	int ifindex;
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

const volatile __u32 target_tgid = 0;
const volatile __s32 target_ifindex = 0;
const volatile __u64 target_netns_cookie = 0;

struct txout {
	__u64 sent;    /* frames the driver accepted */
	__u64 drops;   /* frames the driver refused (ring full, too big, no XDP on the peer) */
	__u64 flushes; /* xmit calls */
	__u64 redirect_errors; /* verdicts whose redirect failed before any xmit */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* thread id */
	__type(value, struct txout);
} txout SEC(".maps");

static __always_inline struct txout *ours(const struct net_device *dev)
{
	__u64 pt = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pt;
	struct txout zero = {}, *v;

	if ((__u32)(pt >> 32) != target_tgid)
		return 0;
	if (BPF_CORE_READ(dev, ifindex) != target_ifindex)
		return 0;
	if (BPF_CORE_READ(dev, nd_net.net, net_cookie) != target_netns_cookie)
		return 0;
	v = bpf_map_lookup_elem(&txout, &tid);
	if (v)
		return v;
	bpf_map_update_elem(&txout, &tid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&txout, &tid);
}

/* TP_PROTO(const struct net_device *from_dev, const struct net_device *to_dev,
 *          int sent, int drops, int err) */
SEC("raw_tp/xdp_devmap_xmit")
int gen_devmap_xmit(struct bpf_raw_tracepoint_args *ctx)
{
	const struct net_device *to = (const void *)ctx->args[1];
	int sent = (int)ctx->args[2], drops = (int)ctx->args[3];
	struct txout *v = ours(to);

	if (!v)
		return 0;
	if (sent > 0)
		__sync_fetch_and_add(&v->sent, sent);
	if (drops > 0)
		__sync_fetch_and_add(&v->drops, drops);
	__sync_fetch_and_add(&v->flushes, 1);
	return 0;
}

/* TP_PROTO(const struct net_device *dev, const struct bpf_prog *xdp,
 *          const void *tgt, int err, enum bpf_map_type map_type, u32 map_id, u32 index) */
SEC("raw_tp/xdp_redirect_err")
int gen_redirect_err(struct bpf_raw_tracepoint_args *ctx)
{
	const struct net_device *dev = (const void *)ctx->args[0];
	struct txout *v = ours(dev);

	if (v)
		__sync_fetch_and_add(&v->redirect_errors, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
