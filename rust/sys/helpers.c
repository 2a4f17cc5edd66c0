// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers for rsynproxy.ko: only what Rust cannot reach because C defines it as a static
 * inline or a macro. No logic lives here.
 */
#include "rsynproxy_sys.h"

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

/* For the KUnit cases: give back the budget their refusals spent. */
void rsynproxy_ratelimit_reset(void)
{
	ratelimit_state_init(&rsynproxy_rs, 5 * HZ, 10);
}

void *rsynproxy_seq_start_token(void)
{
	return SEQ_START_TOKEN;
}

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
	SZ(net), OFF(net, proc_net_stat),
	SZ(nf_conn), OFF(nf_conn, status), OFF(nf_conn, ext),
	SZ(nf_conn_synproxy), SZ(nf_conn_seqadj),
	SZ(rsynproxy_stats), OFF(rsynproxy_stats, cnt),
};

const unsigned int rsynproxy_c_layout_len = ARRAY_SIZE(rsynproxy_c_layout);
