// SPDX-License-Identifier: GPL-2.0
/*
 * Bench builds only (`make BENCH=1`, RSYNPROXY_BENCH in Kbuild): the static inlines and
 * macros rust/bench.rs needs. Compiled into no other build, so none of these symbols exists
 * in the production module. No logic lives here.
 */
#include <linux/module.h>
#include <linux/nsproxy.h>
#include <linux/sched.h>
#include <net/ip6_checksum.h>
#include "rsynproxy_sys.h"

/* The packets the bench's capture hook stole, in arrival order. */
static struct sk_buff_head rsynproxy_bench_q;

void rsynproxy_bench_queue_init(void)
{
	skb_queue_head_init(&rsynproxy_bench_q);
}

/* Keeps a stolen packet beyond the hook (or frees it): its route may be a noref one, valid
 * only under the receive path's RCU read lock, so it takes a reference first (as nf_queue
 * does). */
void rsynproxy_bench_stash(struct sk_buff *skb)
{
	if (!skb_dst_force(skb)) {
		/* The route was going away: no use as a template. */
		kfree_skb(skb);
		return;
	}
	skb_queue_tail(&rsynproxy_bench_q, skb);
}

struct sk_buff *rsynproxy_bench_take(void)
{
	return skb_dequeue(&rsynproxy_bench_q);
}

unsigned int rsynproxy_bench_queued(void)
{
	return skb_queue_len_lockless(&rsynproxy_bench_q);
}

/* Around each timed batch: softirq context as the stack gives it to targets and hooks. */
void rsynproxy_bench_enter(void)
{
	local_bh_disable();
	rcu_read_lock();
}

void rsynproxy_bench_leave(void)
{
	rcu_read_unlock();
	local_bh_enable();
}

/* The namespace of the process writing the control file, with a reference. */
struct net *rsynproxy_bench_current_net(void)
{
	return get_net(current->nsproxy->net_ns);
}

void rsynproxy_bench_put_net(struct net *net)
{
	put_net(net);
}

/* The TCP state of the packet's conntrack entry, -1 without a TCP entry. */
int rsynproxy_bench_ct_state(const struct sk_buff *skb)
{
	enum ip_conntrack_info ctinfo;
	struct nf_conn *ct = nf_ct_get(skb, &ctinfo);

	if (!ct || nf_ct_protonum(ct) != IPPROTO_TCP)
		return -1;
	return READ_ONCE(ct->proto.tcp.state);
}

const void *rsynproxy_bench_ct(const struct sk_buff *skb)
{
	enum ip_conntrack_info ctinfo;

	return nf_ct_get(skb, &ctinfo);
}

/* A private linear copy whose TCP header the bench rewrote: a correct checksum, marked
 * verified as a NIC with receive checksum offload hands packets over (the same for both
 * targets; the C target's nf_ip_checksum then does no work, nor does ours). */
void rsynproxy_bench_csum_rx(struct sk_buff *skb, unsigned int thoff)
{
	struct tcphdr *th = (struct tcphdr *)(skb->data + thoff);
	unsigned int len = skb->len - thoff;
	__wsum sum;

	th->check = 0;
	sum = csum_partial(th, len, 0);
	if (ip_hdr(skb)->version == 4)
		th->check = csum_tcpudp_magic(ip_hdr(skb)->saddr, ip_hdr(skb)->daddr, len,
					      IPPROTO_TCP, sum);
	else
		th->check = csum_ipv6_magic(&ipv6_hdr(skb)->saddr, &ipv6_hdr(skb)->daddr, len,
					    IPPROTO_TCP, sum);
	skb->ip_summed = CHECKSUM_UNNECESSARY;
}

/* The floor's checksum, as synproxy_send_tcp(_ipv6) leaves it: the pseudo-header sum, the
 * rest to the device. The network and transport headers are set. */
void rsynproxy_bench_csum_tx(struct sk_buff *skb)
{
	struct tcphdr *th = tcp_hdr(skb);
	unsigned int len = skb->len - skb_transport_offset(skb);

	if (ip_hdr(skb)->version == 4)
		th->check = ~tcp_v4_check(len, ip_hdr(skb)->saddr, ip_hdr(skb)->daddr, 0);
	else
		th->check = ~tcp_v6_check(len, &ipv6_hdr(skb)->saddr, &ipv6_hdr(skb)->daddr, 0);
	skb->ip_summed = CHECKSUM_PARTIAL;
	skb->csum_start = (unsigned char *)th - skb->head;
	skb->csum_offset = offsetof(struct tcphdr, check);
}
