/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C surface rsynproxy.ko uses: kernel headers for its own bindgen run, the module's shared
 * structs, and the helpers in helpers.c that stand in for static inlines and macros.
 * Every name defined here carries the rsynproxy_ prefix so nothing clashes with nf_synproxy_core.
 */
#ifndef RSYNPROXY_SYS_H
#define RSYNPROXY_SYS_H

#include <linux/errno.h>
#include <linux/ratelimit.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/ip6_checksum.h>
#include <net/tcp.h>
#include <net/route.h>
#include <net/ip6_route.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <net/netfilter/nf_conntrack_ecache.h>
#include <net/netfilter/nf_conntrack_zones.h>
#include <linux/netfilter.h>
#include <linux/netfilter/x_tables.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <linux/netfilter/xt_SYNPROXY.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_conntrack_seqadj.h>
#include <net/netfilter/nf_conntrack_synproxy.h>

/* Per-CPU counters, in the column order of /proc/net/stat/synproxy. */
enum rsynproxy_stat {
	RSYNPROXY_STAT_SYN_RECEIVED,
	RSYNPROXY_STAT_COOKIE_INVALID,
	RSYNPROXY_STAT_COOKIE_VALID,
	RSYNPROXY_STAT_COOKIE_RETRANS,
	RSYNPROXY_STAT_CONN_REOPENED,
	/* Backend option mismatches (/proc/net/stat/rsynproxy_mismatch), rust/proto/mismatch.rs. */
	RSYNPROXY_STAT_MISMATCH_WSCALE,
	RSYNPROXY_STAT_MISMATCH_MSS_LARGER,
	RSYNPROXY_STAT_MISMATCH_MSS_SMALLER,
	RSYNPROXY_STAT_MISMATCH_SACK_ABSENT,
	RSYNPROXY_STAT_MISMATCH_TS_ABSENT,
	RSYNPROXY_STAT_MAX,
};

struct rsynproxy_stats {
	unsigned int cnt[RSYNPROXY_STAT_MAX];
};

/* Values bindgen cannot evaluate from macros. */
static const unsigned int RSYNPROXY_XT_CONTINUE = XT_CONTINUE;
static const gfp_t RSYNPROXY_GFP_KERNEL = GFP_KERNEL;
static const gfp_t RSYNPROXY_GFP_ATOMIC = GFP_ATOMIC;
static const unsigned int RSYNPROXY_XT_INV_PROTO = XT_INV_PROTO;
static const unsigned int RSYNPROXY_IP6T_F_PROTO = IP6T_F_PROTO;
static const int RSYNPROXY_HOOK_PRIORITY = NF_IP_PRI_CONNTRACK_CONFIRM - 1;
static const unsigned int RSYNPROXY_IPCT_SYNPROXY = IPCT_SYNPROXY;
static const unsigned int RSYNPROXY_IPCT_SEQADJ = IPCT_SEQADJ;

/* helpers.c: wrappers for static inlines and macros. */
void *rsynproxy_net_generic(const struct net *net, unsigned int id);
struct net *rsynproxy_seq_file_net(struct seq_file *seq);
struct rsynproxy_stats __percpu *rsynproxy_stats_alloc(void);
void rsynproxy_stat_inc(struct rsynproxy_stats __percpu *stats, unsigned int idx);
const struct rsynproxy_stats *rsynproxy_stats_cpu(struct rsynproxy_stats __percpu *stats,
						  unsigned int cpu);
bool rsynproxy_cpu_possible(unsigned int cpu);
unsigned int rsynproxy_nr_cpu_ids(void);
void *rsynproxy_seq_start_token(void);
bool rsynproxy_ratelimit(void);
bool rsynproxy_ratelimit_mismatch(void);
void rsynproxy_pending_set(u32 seq, u32 ack, u32 stash, bool has_its, u32 its);
bool rsynproxy_pending_take(u32 seq, u32 ack, u32 *stash, bool *has_its, u32 *its);
void rsynproxy_pending_clear(void);

/* The data path. */
struct sk_buff *rsynproxy_alloc_reply(unsigned int len);
bool rsynproxy_recycle(struct sk_buff *skb, unsigned int len);
void rsynproxy_ct_set_info(struct sk_buff *skb, unsigned int ctinfo);
void rsynproxy_ct_replace(struct sk_buff *skb, struct nf_conn *ct, unsigned int ctinfo);
void rsynproxy_set_headers(struct sk_buff *skb, unsigned int nh_len, bool partial);
void rsynproxy_free_skb(struct sk_buff *skb);
void rsynproxy_consume_skb(struct sk_buff *skb);
struct nf_conn *rsynproxy_ct_get(const struct sk_buff *skb, unsigned int *ctinfo);
struct nf_conn *rsynproxy_hook_entry(const struct sk_buff *skb, bool ipv6, unsigned int *ctinfo,
				     struct nf_conn_synproxy **sp, unsigned int *thoff);
void rsynproxy_ct_attach(struct sk_buff *nskb, struct nf_conn *ct, unsigned int ctinfo);
void rsynproxy_ct_untracked(struct sk_buff *nskb);
void rsynproxy_ct_event(struct nf_conn *ct, unsigned int event);
void rsynproxy_seqadj_reset(struct nf_conn *ct);
void rsynproxy_seq_adjust_on(struct nf_conn *ct);
struct nf_conn *rsynproxy_tmpl_alloc(struct net *net);
void rsynproxy_ct_put(struct nf_conn *ct);
int rsynproxy_send4(struct net *net, const struct sk_buff *oskb, struct sk_buff *nskb);
int rsynproxy_send6(struct net *net, const struct sk_buff *oskb, struct sk_buff *nskb);
struct proc_dir_entry *rsynproxy_net_proc_net_stat(const struct net *net);
u8 rsynproxy_ip4_ttl(const struct net *net);
u8 rsynproxy_ip6_hop_limit(const struct net *net);
void rsynproxy_hooks_lock(void);
void rsynproxy_hooks_unlock(void);

/* KUnit builds only (RSYNPROXY_KUNIT, see Kbuild); declared always so that bindgen's output
 * does not depend on the build. */
bool rsynproxy_test_tcp_csum_ok(struct sk_buff *skb);
bool rsynproxy_test_csum_partial(const struct sk_buff *skb);
void rsynproxy_test_ct_lock_init(struct nf_conn *ct);
void rsynproxy_test_dirty(struct sk_buff *skb);
unsigned int rsynproxy_test_stale(const struct sk_buff *skb, unsigned int *ctinfo);
struct sk_buff *rsynproxy_test_clone(struct sk_buff *skb);
void __noreturn rsynproxy_test_fail(void);

/* Bench builds only (RSYNPROXY_BENCH, rust/sys/bench.c); declared always, as above. */
void rsynproxy_bench_queue_init(void);
void rsynproxy_bench_stash(struct sk_buff *skb);
struct sk_buff *rsynproxy_bench_take(void);
unsigned int rsynproxy_bench_queued(void);
void rsynproxy_bench_enter(void);
void rsynproxy_bench_leave(void);
struct net *rsynproxy_bench_current_net(void);
void rsynproxy_bench_put_net(struct net *net);
int rsynproxy_bench_ct_state(const struct sk_buff *skb);
const void *rsynproxy_bench_ct(const struct sk_buff *skb);
void rsynproxy_bench_csum_rx(struct sk_buff *skb, unsigned int thoff);
void rsynproxy_bench_csum_tx(struct sk_buff *skb);

/* Layout guard (KUnit builds only): the C compiler's view of every struct Rust binds. */
struct rsynproxy_layout {
	const char *name;
	size_t value;
};
extern const struct rsynproxy_layout rsynproxy_c_layout[];
extern const unsigned int rsynproxy_c_layout_len;

#endif
