// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for rsynproxy.ko: only what Rust cannot reach because C defines it as a static
 * inline or a macro. No logic lives here.
 */
#include <linux/module.h>
#include <linux/if_vlan.h>
#include "rsynproxy_sys.h"

/* module! has no version field in 6.12; DKMS and modinfo compare this one. */
MODULE_VERSION(RSYNPROXY_VERSION);
/* module! takes `author:` in 6.12 and only `authors: [..]` in 7.x; this works in both. */
MODULE_AUTHOR("RSYNPROXY developers");

void *rsynproxy_net_generic(const struct net *net, unsigned int id)
{
	return net_generic(net, id);
}

struct net *rsynproxy_seq_file_net(struct seq_file *seq)
{
	return seq_file_net(seq);
}

struct rsynproxy_stats __percpu *rsynproxy_stats_alloc(void)
{
	return alloc_percpu(struct rsynproxy_stats);
}

void rsynproxy_stat_inc(struct rsynproxy_stats __percpu *stats, unsigned int idx)
{
	this_cpu_inc(stats->cnt[idx]);
}

const struct rsynproxy_stats *rsynproxy_stats_cpu(struct rsynproxy_stats __percpu *stats,
						  unsigned int cpu)
{
	return per_cpu_ptr(stats, cpu);
}

bool rsynproxy_cpu_possible(unsigned int cpu)
{
	return cpu_possible(cpu);
}

unsigned int rsynproxy_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

/* Our own budget (5 s, burst 10, like pr_info_ratelimited) so that other subsystems'
 * messages do not silence ours, as the shared net_ratelimit() would. */
static DEFINE_RATELIMIT_STATE(rsynproxy_rs, 5 * HZ, 10);

bool rsynproxy_ratelimit(void)
{
	return __ratelimit(&rsynproxy_rs);
}

/* The mismatch log line has its own budget: a misconfigured backend logs on every
 * connection, and must not silence the rule refusals (or the other way round). */
static DEFINE_RATELIMIT_STATE(rsynproxy_mismatch_rs, 5 * HZ, 10);

bool rsynproxy_ratelimit_mismatch(void)
{
	return __ratelimit(&rsynproxy_mismatch_rs);
}

/* What the target knows of a backend SYN it is sending (what the client was told, the
 * TSecr it sent: `its`, valid if `has_its`), for the hook that sees that SYN pass
 * POST_ROUTING before the send returns: keyed by the SYN's seq and ack, so anything else on
 * this CPU never takes it. (rust/glue/pending.rs) */
struct rsynproxy_pending {
	u32 seq;
	u32 ack;
	u32 stash;
	u32 its;
	bool has_its;
	bool armed;
};

static DEFINE_PER_CPU(struct rsynproxy_pending, rsynproxy_pending);

void rsynproxy_pending_set(u32 seq, u32 ack, u32 stash, bool has_its, u32 its)
{
	struct rsynproxy_pending *p = get_cpu_ptr(&rsynproxy_pending);

	p->seq = seq;
	p->ack = ack;
	p->stash = stash;
	p->has_its = has_its;
	p->its = its;
	p->armed = true;
	put_cpu_ptr(&rsynproxy_pending);
}

/* Whether this CPU's slot holds the SYN with `seq` and `ack`; if so, takes it. */
bool rsynproxy_pending_take(u32 seq, u32 ack, u32 *stash, bool *has_its, u32 *its)
{
	struct rsynproxy_pending *p = get_cpu_ptr(&rsynproxy_pending);
	bool found = p->armed && p->seq == seq && p->ack == ack;

	if (found) {
		*stash = p->stash;
		*has_its = p->has_its;
		*its = p->its;
		p->armed = false;
	}
	put_cpu_ptr(&rsynproxy_pending);
	return found;
}

void rsynproxy_pending_clear(void)
{
	struct rsynproxy_pending *p = get_cpu_ptr(&rsynproxy_pending);

	p->armed = false;
	put_cpu_ptr(&rsynproxy_pending);
}

void *rsynproxy_seq_start_token(void)
{
	return SEQ_START_TOKEN;
}

/* --- the data path --------------------------------------------------------------------- */

/* A reply of `len` zeroed bytes at data, with headroom for the link layer (atomic). */
struct sk_buff *rsynproxy_alloc_reply(unsigned int len)
{
	struct sk_buff *skb = alloc_skb(len + MAX_TCP_HEADER, GFP_ATOMIC);

	if (!skb)
		return NULL;
	skb_reserve(skb, MAX_TCP_HEADER);
	skb_put_zero(skb, len);
	return skb;
}

/*
 * Makes the packet the proxy answers into the buffer of its answer: `len` zeroed bytes at
 * data, as rsynproxy_alloc_reply gives, and a new packet's metadata, so nothing of the
 * client's packet rides on the reply or steers its routing and queueing (socket, control
 * block, marks, priority, times, hashes, VLAN tag, device, queue, switch and IPVS state:
 * skb_scrub_packet's list and alloc_skb's zeroes). Its route stays for ip_route_me_harder
 * (which replaces it, as for C's reply that borrows the client packet's route), its
 * conntrack reference for the caller to keep or replace. False, changing nothing, where the data is
 * not this skb's alone (shared, cloned: a packet socket or tc mirror reads it), is not
 * linear, carries extensions (IPsec, bridge: C's fresh reply has none) or lacks room: the
 * caller allocates instead.
 */
bool rsynproxy_recycle(struct sk_buff *skb, unsigned int len)
{
	if (skb_shared(skb) || skb_cloned(skb) || skb_is_nonlinear(skb) || skb_is_gso(skb) ||
	    skb_has_extensions(skb) || len > skb_headlen(skb) + skb_tailroom(skb))
		return false;
	skb_orphan(skb);
	memset(skb->cb, 0, sizeof(skb->cb));
	skb->dev = NULL;
	skb->pkt_type = PACKET_HOST;
	skb->skb_iif = 0;
	skb->ignore_df = 0;
	skb->mark = 0;
	skb->priority = 0;
	skb->encapsulation = 0;
	skb->mac_len = 0;
	skb_set_queue_mapping(skb, 0);
	skb_clear_hash(skb);
	skb_clear_tstamp(skb);
	__vlan_hwaccel_clear_tag(skb);
	nf_reset_trace(skb);
	ipvs_reset(skb);
	skb_init_secmark(skb);
	skb_reset_redirect(skb);
#ifdef CONFIG_NET_SWITCHDEV
	skb->offload_fwd_mark = 0;
	skb->offload_l3_fwd_mark = 0;
#endif
#if defined(CONFIG_NET_RX_BUSY_POLL) || defined(CONFIG_XPS)
	skb->sender_cpu = 0;
#endif
	__skb_trim(skb, 0);
	skb_put_zero(skb, len);
	return true;
}

/*
 * Network header at data, TCP after `nh_len` bytes. `partial`: the TCP checksum field holds
 * the pseudo-header sum and the device (or skb_checksum_help) completes it, as C's
 * synproxy_send_tcp leaves it; otherwise the checksum is complete (a packet as it arrives,
 * for the KUnit tests).
 */
void rsynproxy_set_headers(struct sk_buff *skb, unsigned int nh_len, bool partial)
{
	skb_reset_network_header(skb);
	skb_set_transport_header(skb, nh_len);
	if (partial) {
		skb->ip_summed = CHECKSUM_PARTIAL;
		skb->csum_start = skb_transport_header(skb) - skb->head;
		skb->csum_offset = offsetof(struct tcphdr, check);
	}
}

void rsynproxy_free_skb(struct sk_buff *skb)
{
	kfree_skb(skb);
}

void rsynproxy_consume_skb(struct sk_buff *skb)
{
	consume_skb(skb);
}

struct nf_conn *rsynproxy_ct_get(const struct sk_buff *skb, unsigned int *ctinfo)
{
	enum ip_conntrack_info info;
	struct nf_conn *ct = nf_ct_get(skb, &info);

	*ctinfo = info;
	return ct;
}

/*
 * The hook's first tests in one call, as C's hook makes them with inlines (nf_ct_get,
 * nfct_synproxy, nf_ct_protonum, nf_is_loopback_packet, ip_hdrlen or ipv6_skip_exthdr):
 * the packet's entry when it tracks TCP, carries a synproxy extension (*sp), the packet did
 * not come back through the loopback device and its TCP header is at *thoff (IPv4: the
 * protocol is TCP; IPv6: the header chain ends in TCP, not in a later fragment; an ICMP
 * error related to the entry is not TCP); NULL otherwise. Every packet of every connection
 * passes here.
 */
struct nf_conn *rsynproxy_hook_entry(const struct sk_buff *skb, bool ipv6, unsigned int *ctinfo,
				     struct nf_conn_synproxy **sp, unsigned int *thoff)
{
	enum ip_conntrack_info info;
	struct nf_conn *ct = nf_ct_get(skb, &info);

	if (!ct)
		return NULL;
	*sp = nfct_synproxy(ct);
	if (!*sp || nf_ct_protonum(ct) != IPPROTO_TCP || nf_is_loopback_packet(skb))
		return NULL;
	if (ipv6) {
		u8 nexthdr = ipv6_hdr(skb)->nexthdr;
		__be16 frag_off;
		int off = ipv6_skip_exthdr(skb, sizeof(struct ipv6hdr), &nexthdr, &frag_off);

		if (off < 0 || nexthdr != IPPROTO_TCP || (ntohs(frag_off) & ~0x7))
			return NULL;
		*thoff = off;
	} else {
		if (ip_hdr(skb)->protocol != IPPROTO_TCP)
			return NULL;
		*thoff = ip_hdrlen(skb);
	}
	*ctinfo = info;
	return ct;
}

void rsynproxy_ct_attach(struct sk_buff *nskb, struct nf_conn *ct, unsigned int ctinfo)
{
	nf_ct_set(nskb, ct, ctinfo);
	nf_conntrack_get(&ct->ct_general);
}

/* Drops whatever entry the packet holds (none for a new one) and marks it untracked. */
void rsynproxy_ct_untracked(struct sk_buff *nskb)
{
	nf_reset_ct(nskb);
	nf_ct_set(nskb, NULL, IP_CT_UNTRACKED);
}

/* A recycled packet's conntrack state: a reference on `ct` as `ctinfo`, taken before the one
 * it held (maybe on the same entry) is dropped. */
void rsynproxy_ct_replace(struct sk_buff *skb, struct nf_conn *ct, unsigned int ctinfo)
{
	struct nf_conntrack *old = skb_nfct(skb);

	nf_conntrack_get(&ct->ct_general);
	nf_ct_set(skb, ct, ctinfo);
	nf_conntrack_put(old);
}

/* The entry the packet holds, kept under another `ctinfo` (its reference unchanged). */
void rsynproxy_ct_set_info(struct sk_buff *skb, unsigned int ctinfo)
{
	enum ip_conntrack_info old;

	nf_ct_set(skb, nf_ct_get(skb, &old), ctinfo);
}

void rsynproxy_ct_event(struct nf_conn *ct, unsigned int event)
{
	nf_conntrack_event_cache(event, ct);
}

/*
 * Forget the sequence adjustment of a previous connection on the same entry.
 * nf_ct_seqadj_init(ct, dir, 0) returns at once, so it cannot do this.
 */
void rsynproxy_seqadj_reset(struct nf_conn *ct)
{
	struct nf_conn_seqadj *seqadj = nfct_seqadj(ct);

	spin_lock_bh(&ct->lock);
	clear_bit(IPS_SEQ_ADJUST_BIT, &ct->status);
	if (seqadj)
		memset(seqadj->seq, 0, sizeof(seqadj->seq));
	spin_unlock_bh(&ct->lock);
}

/* Marks an entry as translating when the backend's ISN equals ours (offset 0, for which
 * nf_ct_seqadj_init sets nothing): the hook takes IPS_SEQ_ADJUST for "the backend has
 * answered" (rust/proto/mismatch.rs). A zero offset translates nothing. */
void rsynproxy_seq_adjust_on(struct nf_conn *ct)
{
	set_bit(IPS_SEQ_ADJUST_BIT, &ct->status);
}

/* The template a backend SYN carries: conntrack gives the new entry both extensions. */
struct nf_conn *rsynproxy_tmpl_alloc(struct net *net)
{
	struct nf_conn *ct = nf_ct_tmpl_alloc(net, &nf_ct_zone_dflt, GFP_KERNEL);

	if (!ct)
		return NULL;
	if (!nfct_seqadj_ext_add(ct) || !nfct_synproxy_ext_add(ct)) {
		nf_ct_tmpl_free(ct);
		return NULL;
	}
	__set_bit(IPS_CONFIRMED_BIT, &ct->status);
	return ct;
}

void rsynproxy_ct_put(struct nf_conn *ct)
{
	nf_ct_put(ct);
}

/* Routes `nskb` like `oskb`, then sends it through OUTPUT and POSTROUTING. They are the same
 * skb when the proxy made the answered packet over (rsynproxy_recycle): it keeps its route
 * until ip_route_me_harder replaces it. */
int rsynproxy_send4(struct net *net, const struct sk_buff *oskb, struct sk_buff *nskb)
{
	int err;

	if (nskb != oskb)
		skb_dst_set_noref(nskb, skb_dst(oskb));
	nskb->protocol = htons(ETH_P_IP);
	err = ip_route_me_harder(net, nskb->sk, nskb, RTN_UNSPEC);
	if (err) {
		kfree_skb(nskb);
		return err;
	}
	return ip_local_out(net, nskb->sk, nskb);
}

int rsynproxy_send6(struct net *net, const struct sk_buff *oskb, struct sk_buff *nskb)
{
	const struct ipv6hdr *iph = ipv6_hdr(nskb);
	const struct tcphdr *th = tcp_hdr(nskb);
	struct dst_entry *dst;
	struct flowi6 fl6;
	int err;

	memset(&fl6, 0, sizeof(fl6));
	fl6.flowi6_proto = IPPROTO_TCP;
	fl6.saddr = iph->saddr;
	fl6.daddr = iph->daddr;
	fl6.fl6_sport = th->source;
	fl6.fl6_dport = th->dest;
	security_skb_classify_flow((struct sk_buff *)oskb, flowi6_to_flowi_common(&fl6));
	err = nf_ip6_route(net, &dst, flowi6_to_flowi(&fl6), false);
	if (err)
		goto free;
	dst = xfrm_lookup(net, dst, flowi6_to_flowi(&fl6), NULL, 0);
	if (IS_ERR(dst)) {
		err = PTR_ERR(dst);
		goto free;
	}
	skb_dst_drop(nskb); /* a recycled packet's own route */
	skb_dst_set(nskb, dst);
	nskb->protocol = htons(ETH_P_IPV6);
	return ip6_local_out(net, nskb->sk, nskb);
free:
	kfree_skb(nskb);
	return err;
}

/*
 * struct net is read only here, never from Rust: bindgen cannot lay it out on 7.x. Its
 * struct ns_common holds `struct ns_tree;`, an unnamed member of a tagged struct
 * (-fms-extensions), which bindgen drops: on 7.2 proc_net_stat came out 128 bytes early.
 */
struct proc_dir_entry *rsynproxy_net_proc_net_stat(const struct net *net)
{
	return net->proc_net_stat;
}

u8 rsynproxy_ip4_ttl(const struct net *net)
{
	return READ_ONCE(net->ipv4.sysctl_ip_default_ttl);
}

/* devconf_all is NULL when IPv6 is disabled (ipv6.disable=1: addrconf never ran). */
u8 rsynproxy_ip6_hop_limit(const struct net *net)
{
	const struct ipv6_devconf *cnf = READ_ONCE(net->ipv6.devconf_all);

	return cnf ? READ_ONCE(cnf->hop_limit) : IPV6_DEFAULT_HOPLIMIT;
}

#ifdef RSYNPROXY_KUNIT
#include <kunit/test.h>
#include <kunit/test-bug.h>

/* For KUnit: whether a built packet's TCP checksum verifies, computed by the kernel; a
 * CHECKSUM_PARTIAL one is completed first, as a device without offload would. */
bool rsynproxy_test_tcp_csum_ok(struct sk_buff *skb)
{
	unsigned int thoff = skb_transport_offset(skb), len = skb->len - thoff;
	__wsum sum;

	if (skb->ip_summed == CHECKSUM_PARTIAL && skb_checksum_help(skb))
		return false;
	sum = skb_checksum(skb, thoff, len, 0);
	if (ip_hdr(skb)->version == 4)
		return csum_tcpudp_magic(ip_hdr(skb)->saddr, ip_hdr(skb)->daddr, len,
					 IPPROTO_TCP, sum) == 0;
	return csum_ipv6_magic(&ipv6_hdr(skb)->saddr, &ipv6_hdr(skb)->daddr, len,
			       IPPROTO_TCP, sum) == 0;
}

/* For KUnit: whether a built packet leaves its TCP checksum to the device. */
bool rsynproxy_test_csum_partial(const struct sk_buff *skb)
{
	return skb->ip_summed == CHECKSUM_PARTIAL &&
	       skb->csum_start == skb_transport_header(skb) - skb->head &&
	       skb->csum_offset == offsetof(struct tcphdr, check);
}

/* For KUnit: gives a packet the metadata a received one may carry, all of which a recycled
 * reply must lose. */
void rsynproxy_test_dirty(struct sk_buff *skb)
{
	memset(skb->cb, 0xab, sizeof(skb->cb));
	skb->dev = init_net.loopback_dev;
	skb->pkt_type = PACKET_OTHERHOST;
	skb->skb_iif = 5;
	skb->ignore_df = 1;
	skb->mark = 7;
	skb->priority = 3;
	skb->encapsulation = 1;
	skb->mac_len = ETH_HLEN;
	skb_set_queue_mapping(skb, 2);
	skb_set_hash(skb, 0x1234, PKT_HASH_TYPE_L4);
	skb->tstamp = ktime_set(1, 2);
	__vlan_hwaccel_put_tag(skb, htons(ETH_P_8021Q), 5);
	rsynproxy_ct_untracked(skb);
}

/* For KUnit: which of the metadata rsynproxy_test_dirty sets a recycled packet still has
 * (a bit each, 0: none), and its conntrack state as `*ctinfo`. */
unsigned int rsynproxy_test_stale(const struct sk_buff *skb, unsigned int *ctinfo)
{
	static const u8 zero[sizeof(skb->cb)];
	enum ip_conntrack_info info;
	unsigned int stale = 0;

	nf_ct_get(skb, &info);
	*ctinfo = info;
	stale |= (memcmp(skb->cb, zero, sizeof(zero)) != 0) << 0;
	stale |= (skb->dev != NULL) << 1;
	stale |= (skb->pkt_type != PACKET_HOST) << 2;
	stale |= (skb->skb_iif != 0) << 3;
	stale |= (skb->ignore_df != 0) << 4;
	stale |= (skb->mark != 0) << 5;
	stale |= (skb->priority != 0) << 6;
	stale |= (skb->encapsulation != 0) << 7;
	stale |= (skb->mac_len != 0) << 8;
	stale |= (skb_get_queue_mapping(skb) != 0) << 9;
	stale |= (skb->hash != 0 || skb->l4_hash || skb->sw_hash) << 10;
	stale |= (skb->tstamp != 0) << 11;
	stale |= skb_vlan_tag_present(skb) << 12;
	return stale;
}

/* For KUnit: a clone sharing the packet's data, as a packet socket takes. */
struct sk_buff *rsynproxy_test_clone(struct sk_buff *skb)
{
	return skb_clone(skb, GFP_KERNEL);
}

/* For KUnit: nf_ct_tmpl_alloc leaves ct->lock uninitialised (a template is never locked);
 * the seqadj case locks its own template like an entry, so it initialises the lock first. */
void rsynproxy_test_ct_lock_init(struct nf_conn *ct)
{
	spin_lock_init(&ct->lock);
}
/*
 * For KUnit: fails and aborts the running case. Rust's kunit_assert! changed its arguments
 * between 6.12 and 7.x (the file name became a C string); this spelling is in both.
 */
void __noreturn rsynproxy_test_fail(void)
{
	KUNIT_FAIL_AND_ABORT(kunit_get_current_test(), "failed (see the line above)");
}
#endif

/* Serialises hook registration against removal across tables and backends. */
static DEFINE_MUTEX(rsynproxy_hooks_mutex);

void rsynproxy_hooks_lock(void)
{
	mutex_lock(&rsynproxy_hooks_mutex);
}

void rsynproxy_hooks_unlock(void)
{
	mutex_unlock(&rsynproxy_hooks_mutex);
}

#ifdef RSYNPROXY_KUNIT
#define SZ(t) { #t, sizeof(struct t) }
#define OFF(t, f) { #t "." #f, offsetof(struct t, f) }

const struct rsynproxy_layout rsynproxy_c_layout[] = {
	SZ(sk_buff), OFF(sk_buff, data), OFF(sk_buff, len), OFF(sk_buff, head),
	SZ(xt_target), OFF(xt_target, target), OFF(xt_target, checkentry), OFF(xt_target, destroy),
	OFF(xt_target, me), OFF(xt_target, targetsize), OFF(xt_target, hooks),
	OFF(xt_target, proto), OFF(xt_target, family),
	SZ(xt_action_param), OFF(xt_action_param, targinfo), OFF(xt_action_param, state),
	OFF(xt_action_param, thoff),
	SZ(xt_tgchk_param), OFF(xt_tgchk_param, net), OFF(xt_tgchk_param, entryinfo),
	OFF(xt_tgchk_param, targinfo), OFF(xt_tgchk_param, hook_mask),
	OFF(xt_tgchk_param, family), OFF(xt_tgchk_param, nft_compat),
	SZ(xt_tgdtor_param), OFF(xt_tgdtor_param, net), OFF(xt_tgdtor_param, family),
	SZ(nf_synproxy_info), OFF(nf_synproxy_info, wscale), OFF(nf_synproxy_info, mss),
	SZ(ipt_entry), OFF(ipt_entry, ip), SZ(ipt_ip), OFF(ipt_ip, proto), OFF(ipt_ip, invflags),
	SZ(ip6t_entry), OFF(ip6t_entry, ipv6), SZ(ip6t_ip6), OFF(ip6t_ip6, proto),
	OFF(ip6t_ip6, flags), OFF(ip6t_ip6, invflags),
	SZ(nf_hook_state), OFF(nf_hook_state, hook), OFF(nf_hook_state, pf),
	OFF(nf_hook_state, net),
	SZ(pernet_operations), OFF(pernet_operations, init), OFF(pernet_operations, exit),
	OFF(pernet_operations, id), OFF(pernet_operations, size),
	SZ(seq_operations), SZ(seq_file), OFF(seq_file, private),
	SZ(net),
	SZ(nf_conn), OFF(nf_conn, status), OFF(nf_conn, ext),
	SZ(nf_conn_synproxy), SZ(nf_conn_seqadj),
	SZ(rsynproxy_stats), OFF(rsynproxy_stats, cnt),
	SZ(nf_hook_ops), OFF(nf_hook_ops, hook), OFF(nf_hook_ops, pf), OFF(nf_hook_ops, hooknum),
	OFF(nf_hook_ops, priority),
	OFF(nf_conn_synproxy, isn), OFF(nf_conn_synproxy, its),
	OFF(nf_conn_synproxy, tsoff),
	OFF(nf_conn, proto), SZ(ip_ct_tcp), OFF(ip_ct_tcp, seen), OFF(ip_ct_tcp, state),
	SZ(ip_ct_tcp_state), OFF(ip_ct_tcp_state, td_maxwin),
	SZ(iphdr), SZ(ipv6hdr), SZ(tcphdr),
};

const unsigned int rsynproxy_c_layout_len = ARRAY_SIZE(rsynproxy_c_layout);
#endif
