// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `rsynproxy`, run when the module loads (6.12 has no `#[kunit_tests]`: the
//! suite is placed in `.kunit_test_suites` by hand). Results: debugfs `kunit/rsynproxy/results`.
//!
//! Compiled only into test builds (`make KUNIT=1`, cfg `rsynproxy_kunit`). The cases leave no
//! trace in the running kernel: the counters case uses counters of its own; the checkentry
//! cases run the real checkentry and destroy in init_net, which take and give back conntrack's
//! and our hook references (checked: init_net's references are the same afterwards), and
//! log nothing (they call `target::checkentry`, not the logging wrapper, so the message
//! budget is untouched); packets are built and freed locally; the template of the seqadj case
//! is its own.

use crate::glue::net::Net;
use crate::glue::percpu::PerCpuStats;
use crate::glue::xt;
use crate::proto::info::{OPT_ECN, OPT_KNOWN, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use crate::proto::stats::Stat;
use crate::{pernet, sys, target};
use core::mem::{offset_of, size_of};
use core::ptr::addr_of_mut;
use kernel::bindings::{kunit, kunit_case, kunit_suite};

/// Fails the running case with a message (KUnit prints it above the failure).
fn check(ok: bool, what: core::fmt::Arguments<'_>) {
    if !ok {
        kernel::kunit::err(format_args!("    # {}\n", what));
        // SAFETY: called from a running KUnit case (every `check` is), whose test
        // context kunit_get_current_test() finds; the case ends there.
        unsafe { sys::rsynproxy_test_fail() };
    }
}

const IPV4: u8 = sys::NFPROTO_IPV4 as u8;
const IPV6: u8 = sys::NFPROTO_IPV6 as u8;

/// A rule as iptables would hand it to checkentry.
struct Rule {
    proto: u16,
    proto_flag: bool,
    inverted: bool,
    options: u8,
    wscale: u8,
    mss: u16,
}

const fn rule(options: u8, wscale: u8, mss: u16) -> Rule {
    Rule {
        proto: 6,
        proto_flag: true,
        inverted: false,
        options,
        wscale,
        mss,
    }
}

/// Runs the real checkentry (and destroy, on success) in init_net; returns its result as
/// checkentry's errno.
fn run_check(family: u8, r: &Rule) -> i32 {
    // SAFETY: all-zero entries are valid "match anything" entries.
    let mut e4: sys::ipt_entry = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let mut e6: sys::ip6t_entry = unsafe { core::mem::zeroed() };
    let inv = if r.inverted {
        sys::RSYNPROXY_XT_INV_PROTO as u8
    } else {
        0
    };
    e4.ip.proto = r.proto;
    e4.ip.invflags = inv;
    e6.ipv6.proto = r.proto;
    e6.ipv6.invflags = inv;
    if r.proto_flag {
        e6.ipv6.flags = sys::RSYNPROXY_IP6T_F_PROTO as u8;
    }
    let mut info = sys::nf_synproxy_info {
        options: r.options,
        wscale: r.wscale,
        mss: r.mss,
    };
    // SAFETY: all-zero is a valid parameter block; the fields checkentry reads are set below.
    let mut par: sys::xt_tgchk_param = unsafe { core::mem::zeroed() };
    par.net = Net::init().as_ptr();
    par.table = c"filter".as_ptr().cast();
    par.entryinfo = if family == IPV6 {
        core::ptr::addr_of!(e6).cast()
    } else {
        core::ptr::addr_of!(e4).cast()
    };
    par.targinfo = addr_of_mut!(info).cast();
    par.hook_mask = 1 << sys::nf_inet_hooks_NF_INET_LOCAL_IN;
    par.family = family;
    // SAFETY: `par` is a complete checkentry parameter for our target, live for the call.
    let cp = unsafe { xt::CheckParam::from_raw(&par) };
    let ret = match target::checkentry(&cp) {
        Ok(()) => 0,
        Err(target::Refusal::Rule(_)) => EINVAL,
        Err(target::Refusal::Error(e)) => e.to_errno(),
    };
    if ret == 0 {
        // SAFETY: as above; destroy releases what the successful checkentry took.
        let mut d: sys::xt_tgdtor_param = unsafe { core::mem::zeroed() };
        d.net = par.net;
        d.targinfo = par.targinfo;
        d.family = family;
        // SAFETY: `d` is a complete destroy parameter for the rule just checked.
        unsafe { target::tg_destroy(&d) };
    }
    ret
}

const EINVAL: i32 = -(sys::EINVAL as i32);

fn checkentry_cases(family: u8) {
    let all = OPT_MSS | OPT_WSCALE | OPT_SACK_PERM | OPT_TIMESTAMP | OPT_ECN;
    let cases: [(&str, Rule, i32); 12] = [
        ("seed recipe", rule(OPT_KNOWN & !OPT_ECN, 9, 1460), 0),
        ("every option", rule(all, 14, 65535), 0),
        ("no options", rule(0, 0, 0), 0),
        ("wscale 0", rule(OPT_WSCALE, 0, 0), 0),
        (
            "wscale ignored without its flag",
            rule(OPT_MSS, 200, 1460),
            0,
        ),
        ("mss ignored without its flag", rule(OPT_WSCALE, 7, 0), 0),
        ("wscale 15", rule(OPT_WSCALE, 15, 0), EINVAL),
        ("wscale 255", rule(all, 255, 1460), EINVAL),
        ("mss 0", rule(OPT_MSS, 0, 0), EINVAL),
        ("unknown bit 0x20", rule(0x20, 0, 0), EINVAL),
        ("unknown bit 0x80", rule(OPT_MSS | 0x80, 0, 1460), EINVAL),
        (
            "not tcp (udp)",
            Rule {
                proto: 17,
                ..rule(0, 0, 0)
            },
            EINVAL,
        ),
    ];
    let refs_before = pernet::hook_refs(Net::init());
    for (name, r, want) in &cases {
        let got = run_check(family, r);
        check(
            got == *want,
            format_args!("family {family} {name}: got {got}, want {want}"),
        );
    }
    let any = Rule {
        proto: 0,
        proto_flag: false,
        ..rule(0, 0, 0)
    };
    let got = run_check(family, &any);
    check(
        got == EINVAL,
        format_args!("family {family} any protocol: got {got}"),
    );
    let inv = Rule {
        inverted: true,
        ..rule(0, 0, 0)
    };
    let got = run_check(family, &inv);
    check(
        got == EINVAL,
        format_args!("family {family} ! -p tcp: got {got}"),
    );
    let refs_after = pernet::hook_refs(Net::init());
    check(
        refs_before == refs_after,
        format_args!("init_net hook references {refs_before:?} before, {refs_after:?} after"),
    );
}

extern "C" fn checkentry_ipv4(_t: *mut kunit) {
    checkentry_cases(IPV4);
}

extern "C" fn checkentry_ipv6(_t: *mut kunit) {
    checkentry_cases(IPV6);
    // ip6tables sets IP6T_F_PROTO with -p; a bare proto number without the flag is "any".
    let no_flag = Rule {
        proto_flag: false,
        ..rule(0, 0, 0)
    };
    let got = run_check(IPV6, &no_flag);
    check(
        got == EINVAL,
        format_args!("ipv6 proto without IP6T_F_PROTO: got {got}"),
    );
}

extern "C" fn counters_per_cpu(_t: *mut kunit) {
    // Counters of the case's own, not init_net's: a test leaves a user's counters alone.
    let Ok(st) = PerCpuStats::new() else {
        return check(false, format_args!("no per-CPU counters"));
    };
    let before = st.sum();
    st.inc(Stat::SynReceived);
    st.inc(Stat::ConnReopened);
    st.inc(Stat::ConnReopened);
    let after = st.sum();
    let delta: [u32; 5] = core::array::from_fn(|i| after[i].wrapping_sub(before[i]));
    check(
        before == [0; crate::proto::stats::NCOUNTERS] && delta == [1, 0, 0, 0, 2],
        format_args!("counters {before:?}, deltas {delta:?}"),
    );
}

/// Rust's view of every struct the module binds, named as `rsynproxy_c_layout` names them.
fn rust_layout() -> impl Iterator<Item = (&'static str, usize)> {
    macro_rules! sz {
        ($t:ident) => {
            (stringify!($t), size_of::<sys::$t>())
        };
    }
    macro_rules! off {
        ($t:ident, $f:ident) => {
            off!($t, $f, $f)
        };
        ($t:ident, $f:ident, $rf:ident) => {
            (
                concat!(stringify!($t), ".", stringify!($f)),
                offset_of!(sys::$t, $rf),
            )
        };
    }
    [
        sz!(sk_buff),
        off!(sk_buff, data),
        off!(sk_buff, len),
        off!(sk_buff, head),
        sz!(xt_target),
        off!(xt_target, target),
        off!(xt_target, checkentry),
        off!(xt_target, destroy),
        off!(xt_target, me),
        off!(xt_target, targetsize),
        off!(xt_target, hooks),
        off!(xt_target, proto),
        off!(xt_target, family),
        sz!(xt_action_param),
        off!(xt_action_param, targinfo, __bindgen_anon_2),
        off!(xt_action_param, state),
        off!(xt_action_param, thoff),
        sz!(xt_tgchk_param),
        off!(xt_tgchk_param, net),
        off!(xt_tgchk_param, entryinfo),
        off!(xt_tgchk_param, targinfo),
        off!(xt_tgchk_param, hook_mask),
        off!(xt_tgchk_param, family),
        off!(xt_tgchk_param, nft_compat),
        sz!(xt_tgdtor_param),
        off!(xt_tgdtor_param, net),
        off!(xt_tgdtor_param, family),
        sz!(nf_synproxy_info),
        off!(nf_synproxy_info, wscale),
        off!(nf_synproxy_info, mss),
        sz!(ipt_entry),
        off!(ipt_entry, ip),
        sz!(ipt_ip),
        off!(ipt_ip, proto),
        off!(ipt_ip, invflags),
        sz!(ip6t_entry),
        off!(ip6t_entry, ipv6),
        sz!(ip6t_ip6),
        off!(ip6t_ip6, proto),
        off!(ip6t_ip6, flags),
        off!(ip6t_ip6, invflags),
        sz!(nf_hook_state),
        off!(nf_hook_state, hook),
        off!(nf_hook_state, pf),
        off!(nf_hook_state, net),
        sz!(pernet_operations),
        off!(pernet_operations, init),
        off!(pernet_operations, exit),
        off!(pernet_operations, id),
        off!(pernet_operations, size),
        sz!(seq_operations),
        sz!(seq_file),
        off!(seq_file, private),
        sz!(net),
        sz!(nf_conn),
        off!(nf_conn, status),
        off!(nf_conn, ext),
        sz!(nf_conn_synproxy),
        sz!(nf_conn_seqadj),
        sz!(rsynproxy_stats),
        off!(rsynproxy_stats, cnt),
        sz!(nf_hook_ops),
        off!(nf_hook_ops, hook),
        off!(nf_hook_ops, pf),
        off!(nf_hook_ops, hooknum),
        off!(nf_hook_ops, priority),
        off!(nf_conn_synproxy, isn),
        off!(nf_conn_synproxy, its),
        off!(nf_conn_synproxy, tsoff),
        off!(nf_conn, proto),
        sz!(ip_ct_tcp),
        off!(ip_ct_tcp, seen),
        off!(ip_ct_tcp, state),
        sz!(ip_ct_tcp_state),
        off!(ip_ct_tcp_state, td_maxwin),
        sz!(iphdr),
        sz!(ipv6hdr),
        sz!(tcphdr),
    ]
    .into_iter()
}

extern "C" fn layout_matches_c(_t: *mut kunit) {
    // SAFETY: the C table is a static array of `rsynproxy_c_layout_len` entries whose names
    // are string literals.
    let c_table = unsafe {
        core::slice::from_raw_parts(
            sys::rsynproxy_c_layout.as_ptr(),
            sys::rsynproxy_c_layout_len as usize,
        )
    };
    let mut n = 0;
    for (name, rust) in rust_layout() {
        let c = c_table.iter().find(|e| {
            // SAFETY: every name is a NUL-terminated literal (see above).
            unsafe { core::ffi::CStr::from_ptr(e.name.cast()) }.to_bytes() == name.as_bytes()
        });
        match c {
            Some(c) => check(
                c.value == rust,
                format_args!("{name}: C {} Rust {rust}", c.value),
            ),
            None => check(false, format_args!("{name}: missing from the C table")),
        }
        n += 1;
    }
    check(
        n == c_table.len(),
        format_args!("C table has {} entries, Rust {n}", c_table.len()),
    );
}

const fn case(name: &'static core::ffi::CStr, run: unsafe extern "C" fn(*mut kunit)) -> kunit_case {
    // SAFETY: all-zero is a valid kunit_case (KUnit fills status and log).
    let mut c: kunit_case = unsafe { core::mem::zeroed() };
    c.run_case = Some(run);
    c.name = name.as_ptr().cast();
    c
}

// KUnit writes status and logs into these, so they are mutable statics only KUnit touches.
static mut CASES: [kunit_case; 12] = [
    case(c"checkentry_ipv4", checkentry_ipv4),
    case(c"checkentry_ipv6", checkentry_ipv6),
    case(c"counters_per_cpu", counters_per_cpu),
    case(c"layout_matches_c", layout_matches_c),
    case(c"synack_packets", glue_cases::synack_packets),
    case(c"recycled_reply", glue_cases::recycled_reply),
    case(c"cookie_round_trip", glue_cases::cookie_round_trip),
    case(c"timestamp_adjust", glue_cases::timestamp_adjust),
    case(c"malformed_headers", glue_cases::malformed_headers),
    case(c"seqadj_reset", glue_cases::seqadj_reset),
    case(c"window_translation", glue_cases::window_translation),
    // SAFETY: the all-zero case terminates the array.
    unsafe { core::mem::zeroed() },
];

static mut SUITE: kunit_suite = {
    // SAFETY: all-zero is a valid kunit_suite.
    let mut s: kunit_suite = unsafe { core::mem::zeroed() };
    let name = b"rsynproxy";
    let mut i = 0;
    while i < name.len() {
        s.name[i] = name[i];
        i += 1;
    }
    s.test_cases = addr_of_mut!(CASES).cast();
    s
};

#[used(compiler)]
#[link_section = ".kunit_test_suites"]
static mut SUITE_ENTRY: *const kunit_suite = addr_of_mut!(SUITE);

// --- kernel glue: packets, cookies, timestamps, malformed headers, seqadj -----------------

mod glue_cases {
    use super::check;
    use crate::engine::{self, Tcp};
    use crate::family::Ip;
    use crate::glue::conntrack::Template;
    use crate::glue::net::Net;
    use crate::glue::skb::{Keep, NewSkb, Verdict};
    use crate::glue::syncookie::Aligned;
    use crate::proto::flow;
    use crate::proto::info::{Info, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
    use crate::proto::tcp::{self, Header, Options, ACK, HDR_LEN, SYN};
    use crate::proto::wire;
    use crate::sys;
    use kernel::bindings::kunit;

    const V4C: [u8; 4] = [10, 0, 1, 99];
    const V4S: [u8; 4] = [10, 0, 2, 99];
    const V6C: [u8; 16] = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
    const V6S: [u8; 16] = [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];

    /// The IP header of a packet from the client to the server.
    fn client_ip(v6: bool) -> Ip {
        if v6 {
            Ip::V6(Aligned(wire::ipv6_header(V6C, V6S, 64, HDR_LEN)))
        } else {
            Ip::V4(Aligned(wire::ipv4_header(V4C, V4S, 64, HDR_LEN)))
        }
    }

    fn ip_len(v6: bool) -> usize {
        if v6 {
            wire::IPV6_LEN
        } else {
            wire::IPV4_LEN
        }
    }

    fn raw(h: &Header) -> Aligned<HDR_LEN> {
        let mut a = Aligned([0u8; HDR_LEN]);
        tcp::build(h, &Options::default(), &mut a.0);
        a
    }

    /// A packet from the client carrying `seg` as it would arrive (valid checksum).
    fn packet(v6: bool, seg: &[u8]) -> Option<NewSkb> {
        client_ip(v6).packet(Net::init(), false, seg)
    }

    fn csum_ok(skb: &mut NewSkb) -> bool {
        // SAFETY: a complete packet with its headers set.
        unsafe { sys::rsynproxy_test_tcp_csum_ok(skb.as_skb().as_ptr()) }
    }

    /// The rule, client SYN options and SYN header the SYN-ACK cases answer.
    fn synack_inputs() -> (Info, Options, Header) {
        let info = Info {
            options: OPT_MSS | OPT_WSCALE | OPT_SACK_PERM | OPT_TIMESTAMP,
            wscale: 7,
            mss: 1460,
        };
        let client = Options {
            options: OPT_MSS | OPT_WSCALE | OPT_SACK_PERM | OPT_TIMESTAMP,
            wscale: 9,
            mss_option: 1400,
            tsval: 1234,
            ..Options::default()
        };
        let syn = Header {
            sport: 40000,
            dport: 80,
            seq: 1000,
            flags: SYN,
            window: 64240,
            ..Header::default()
        };
        (info, client, syn)
    }

    pub(super) extern "C" fn synack_packets(_t: *mut kunit) {
        let (info, client, syn) = synack_inputs();
        for v6 in [false, true] {
            let ip = client_ip(v6);
            let mut r = flow::syn_ack(&info, &syn, client, 0x12345);
            r.header.seq = ip.cookie_init(&raw(&syn), r.options.mss_encode);
            // Built as the target sends it.
            let Some(mut skb) = ip.reply(Net::init(), true, &r.header, &r.options) else {
                return check(false, format_args!("v6={v6}: no skb"));
            };
            // SAFETY: a complete packet with its headers set.
            let partial = unsafe { sys::rsynproxy_test_csum_partial(skb.as_skb().as_ptr()) };
            check(
                partial,
                format_args!("v6={v6}: SYN-ACK checksum not left to the device"),
            );
            let Some(t) = Tcp::read(skb.as_skb(), ip_len(v6)) else {
                return check(false, format_args!("v6={v6}: SYN-ACK unreadable"));
            };
            check(
                t.h.flags == SYN | ACK
                    && t.h.sport == 80
                    && t.h.dport == 40000
                    && t.h.ack_seq == 1001,
                format_args!("v6={v6}: header {:?}", t.h),
            );
            let o = t.opts;
            check(
                o.options == info.options
                    && o.mss_option == 1460
                    && o.wscale == 7
                    && o.tsecr == 1234,
                format_args!("v6={v6}: options {o:?}"),
            );
            // The TS cookie carries the client's wscale 9 and SACK.
            check(
                o.tsval & 0x3f == 0x10 | 9,
                format_args!("v6={v6}: tsval {:#x}", o.tsval),
            );
            // What a device does with it: the checksum completed verifies.
            check(
                csum_ok(&mut skb),
                format_args!("v6={v6}: SYN-ACK checksum does not verify once completed"),
            );
        }
    }

    /// The SYN-ACK written over the client's SYN (the target's usual path): the bytes of the
    /// allocated reply, none of the SYN's metadata, the SYN's entry as ESTABLISHED_REPLY or,
    /// with none, the untracked mark. A SYN whose data a
    /// clone shares (a packet socket's), or one with too little room, is left as it was.
    pub(super) extern "C" fn recycled_reply(_t: *mut kunit) {
        let (info, client, syn) = synack_inputs();
        // Every field rsynproxy_test_dirty sets (rsynproxy_test_stale's bits).
        const DIRTY: u32 = (1 << 13) - 1;
        let Ok(tmpl) = Template::new(Net::init()) else {
            return check(false, format_args!("template"));
        };
        for (v6, tracked) in [(false, false), (true, false), (false, true), (true, true)] {
            let ip = client_ip(v6);
            let mut r = flow::syn_ack(&info, &syn, client, 0x12345);
            r.header.seq = ip.cookie_init(&raw(&syn), r.options.mss_encode);
            let len = ip.reply_len(&r.options);
            let mut want = [0u8; 100];
            let mut got = [0u8; 100];
            let Some(mut alloc) = ip.reply(Net::init(), true, &r.header, &r.options) else {
                return check(false, format_args!("v6={v6}: no skb"));
            };
            check(
                alloc.as_skb().copy(0, &mut want[..len]),
                format_args!("v6={v6}: allocated reply shorter than {len}"),
            );
            let mut seg = [0u8; 60];
            let n = tcp::build(&syn, &client, &mut seg);
            let Some(mut pkt) = packet(v6, &seg[..n]) else {
                return check(false, format_args!("v6={v6}: no SYN"));
            };
            // SAFETY: a live packet of ours.
            unsafe { sys::rsynproxy_test_dirty(pkt.as_skb().as_ptr()) };
            if tracked {
                // Any entry serves: the recycle keeps the packet's reference, whatever it is.
                pkt.attach(tmpl.conn(), sys::ip_conntrack_info_IP_CT_NEW);
            }
            let skb = pkt.as_skb();
            let syn_len = ip_len(v6) + n;
            let mut before = [0u8; 100];
            check(
                skb.copy(0, &mut before[..syn_len]),
                format_args!("v6={v6}: SYN unreadable"),
            );
            let mut ctinfo = 0;
            // SAFETY: as above; the clone is ours and freed below.
            let clone = unsafe { sys::rsynproxy_test_clone(skb.as_ptr()) };
            check(!clone.is_null(), format_args!("v6={v6}: no clone"));
            check(
                skb.recycle(len).is_none(),
                format_args!("v6={v6}: a cloned SYN was written over"),
            );
            check(
                skb.copy(0, &mut got[..syn_len]) && got[..syn_len] == before[..syn_len],
                format_args!("v6={v6}: the refused recycle changed the SYN's bytes"),
            );
            // SAFETY: as above.
            let stale = unsafe { sys::rsynproxy_test_stale(skb.as_ptr(), &mut ctinfo) };
            check(
                stale == DIRTY,
                format_args!("v6={v6}: the refused recycle reset metadata ({stale:#x})"),
            );
            // SAFETY: the clone is ours and nothing else holds it.
            unsafe { sys::rsynproxy_free_skb(clone) };
            check(
                skb.recycle(8192).is_none(),
                format_args!("v6={v6}: recycled into more bytes than the packet has room for"),
            );
            let Some(mut b) = skb.recycle(len) else {
                return check(false, format_args!("v6={v6}: a private SYN not recycled"));
            };
            check(
                ip.build(&mut b, Net::init(), true, &r.header, &r.options)
                    .is_some(),
                format_args!("v6={v6}: reply not built in place"),
            );
            let est = sys::ip_conntrack_info_IP_CT_ESTABLISHED_REPLY;
            let _ = b.finish(Net::init(), Keep::Own(est), v6);
            check(
                skb.copy(0, &mut got[..len])
                    && !skb.copy(0, &mut got[..len + 1])
                    && got[..len] == want[..len],
                format_args!("v6={v6}: the recycled reply differs from the allocated one"),
            );
            // SAFETY: as above.
            let stale = unsafe { sys::rsynproxy_test_stale(skb.as_ptr(), &mut ctinfo) };
            check(
                stale == 0,
                format_args!("v6={v6}: the reply kept the SYN's metadata ({stale:#x})"),
            );
            let want_info = if tracked {
                sys::ip_conntrack_info_IP_CT_ESTABLISHED_REPLY
            } else {
                sys::ip_conntrack_info_IP_CT_UNTRACKED
            };
            check(
                ctinfo == want_info,
                format_args!("v6={v6} tracked={tracked}: the reply has ctinfo {ctinfo}"),
            );
            // SAFETY: as above.
            let partial = unsafe { sys::rsynproxy_test_csum_partial(skb.as_ptr()) };
            check(
                partial,
                format_args!("v6={v6}: recycled reply's checksum not left to the device"),
            );
        }
    }

    pub(super) extern "C" fn cookie_round_trip(_t: *mut kunit) {
        for v6 in [false, true] {
            let ip = client_ip(v6);
            let syn = Header {
                sport: 40000,
                dport: 80,
                seq: 1000,
                flags: SYN,
                ..Header::default()
            };
            let isn = ip.cookie_init(&raw(&syn), 1460);
            // 1460 is in the IPv4 table; IPv6's largest entry not above it is 1440.
            let want = if v6 { 1440 } else { 1460 };
            let ack = |seq: u32, ack_seq: u32| {
                let h = Header {
                    sport: 40000,
                    dport: 80,
                    seq,
                    ack_seq,
                    flags: ACK,
                    ..Header::default()
                };
                Tcp {
                    raw: raw(&h),
                    h,
                    opts: Options::default(),
                }
            };
            let got = engine::check_cookie(&ip, &ack(1001, isn.wrapping_add(1)), false);
            check(
                got == want,
                format_args!("v6={v6}: ACK decodes {got}, want {want}"),
            );
            // A cookie off by a few minutes' counter is rejected. (Off by one in the low bits
            // may decode another table MSS: the MSS index lives there.)
            let got = engine::check_cookie(&ip, &ack(1001, isn.wrapping_add(1 + (5 << 24))), false);
            check(
                got == 0,
                format_args!("v6={v6}: a wrong cookie decodes {got}"),
            );
            // A keep-alive carries seq = ISN: ours checks the cookie against ISN...
            let ka = ack(1000, isn.wrapping_add(1));
            let got = engine::check_cookie(&ip, &ka, true);
            check(
                got == want,
                format_args!("v6={v6}: keep-alive decodes {got}, want {want}"),
            );
            // ...the C hook passes the header as it is, and the kernel sees ISN - 1.
            let c_way = ip.cookie_check(&ka.raw);
            check(
                c_way != want,
                format_args!("v6={v6}: the C keep-alive check got {c_way} too"),
            );
        }
    }

    /// An ACK with a timestamp option from the client, as a packet.
    fn ts_packet(v6: bool, tsval: u32, tsecr: u32) -> Option<NewSkb> {
        let h = Header {
            sport: 40000,
            dport: 80,
            seq: 5,
            ack_seq: 6,
            flags: ACK,
            window: 100,
            ..Header::default()
        };
        let o = Options {
            options: OPT_TIMESTAMP,
            tsval,
            tsecr,
            ..Options::default()
        };
        let mut seg = [0u8; tcp::MAX_BUILT_LEN];
        let n = tcp::build(&h, &o, &mut seg);
        packet(v6, &seg[..n])
    }

    pub(super) extern "C" fn timestamp_adjust(_t: *mut kunit) {
        for v6 in [false, true] {
            for (reply, want) in [
                (true, (100u32.wrapping_sub(7777), 200)),
                (false, (100, 200 + 7777)),
            ] {
                let Some(mut skb) = ts_packet(v6, 100, 200) else {
                    return check(false, format_args!("no skb"));
                };
                let thoff = ip_len(v6);
                let Some(t) = Tcp::read(skb.as_skb(), thoff) else {
                    return check(false, format_args!("read"));
                };
                let v = engine::adjust_timestamps(skb.as_skb(), thoff, t.h.control(), 7777, reply);
                check(v == Verdict::Accept, format_args!("verdict {v:?}"));
                let t = Tcp::read(skb.as_skb(), thoff);
                let got = t.map(|t| (t.opts.tsval, t.opts.tsecr));
                check(
                    got == Some(want),
                    format_args!("v6={v6} reply={reply}: {got:?}, want {want:?}"),
                );
                check(
                    csum_ok(&mut skb),
                    format_args!("v6={v6} reply={reply}: checksum broken"),
                );
            }
        }
    }

    /// The window of a backend segment rewritten into the client's scale on a real skb: the
    /// field as `Scale::translate` says, the timestamps untouched, the checksum still valid.
    pub(super) extern "C" fn window_translation(_t: *mut kunit) {
        use crate::proto::mismatch::Scale;
        for v6 in [false, true] {
            for (backend, client, want) in [(9u8, 7u8, 400u16), (2, 7, 3), (0, 14, 0)] {
                let Some(mut skb) = ts_packet(v6, 100, 200) else {
                    return check(false, format_args!("no skb"));
                };
                let thoff = ip_len(v6);
                let Some(t) = Tcp::read(skb.as_skb(), thoff) else {
                    return check(false, format_args!("read"));
                };
                let scale = Scale { backend, client };
                let v = engine::translate_window(skb.as_skb(), thoff, t.h.control(), scale);
                check(v == Verdict::Accept, format_args!("verdict {v:?}"));
                let got = Tcp::read(skb.as_skb(), thoff)
                    .map(|t| (t.h.window, t.opts.tsval, t.opts.tsecr));
                check(
                    got == Some((want, 100, 200)),
                    format_args!("v6={v6} {backend}->{client}: {got:?}, want window {want}"),
                );
                check(
                    csum_ok(&mut skb),
                    format_args!("v6={v6} {backend}->{client}: checksum broken"),
                );
            }
        }
    }

    pub(super) extern "C" fn malformed_headers(_t: *mut kunit) {
        // doff below 5, doff past the packet, and option areas whose lengths lie.
        let cases: [(&str, u8, &[u8]); 6] = [
            ("doff 4", 4, &[]),
            ("doff 15 on a bare header", 15, &[]),
            (
                "timestamp of length 40",
                8,
                &[8, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            ("length 1", 6, &[8, 1, 0, 0]),
            ("truncated timestamp", 7, &[1, 1, 8, 10, 0, 0, 0, 0]),
            ("mss at the end", 6, &[1, 1, 1, 2]),
        ];
        for v6 in [false, true] {
            for (name, doff, opts) in cases {
                let mut seg = [0u8; 64];
                let h = Header {
                    sport: 1,
                    dport: 2,
                    flags: ACK,
                    ..Header::default()
                };
                tcp::build(&h, &Options::default(), &mut seg);
                seg[12] = doff << 4;
                seg[HDR_LEN..HDR_LEN + opts.len()].copy_from_slice(opts);
                let len = HDR_LEN + opts.len();
                let Some(mut skb) = packet(v6, &seg[..len]) else {
                    return check(false, format_args!("skb"));
                };
                let thoff = ip_len(v6);
                let t = Tcp::read(skb.as_skb(), thoff);
                let readable = usize::from(doff) * 4 <= len && doff >= 5;
                check(
                    t.is_some() == readable,
                    format_args!("v6={v6} {name}: read {}", t.is_some()),
                );
                if let Some(t) = t {
                    let v = engine::adjust_timestamps(skb.as_skb(), thoff, t.h.control(), 1, true);
                    check(
                        v == Verdict::Accept,
                        format_args!("v6={v6} {name}: verdict {v:?}"),
                    );
                }
            }
        }
    }

    pub(super) extern "C" fn seqadj_reset(_t: *mut kunit) {
        let Ok(tmpl) = Template::new(Net::init()) else {
            return check(false, format_args!("template"));
        };
        let ct = tmpl.conn();
        // SAFETY: the template is ours alone (nothing else has seen it) and its lock unused.
        unsafe { sys::rsynproxy_test_ct_lock_init(ct.as_ptr()) };
        let reply = sys::ip_conntrack_info_IP_CT_ESTABLISHED_REPLY;
        ct.seqadj_init(reply, 1000);
        check(
            ct.seq_adjusting(),
            format_args!("seqadj_init(1000) did not start translating"),
        );
        // What C does on reopen: nothing.
        ct.seqadj_init(reply, 0);
        check(
            ct.seq_adjusting(),
            format_args!("seqadj_init(0) changed something after all"),
        );
        ct.seqadj_reset();
        check(
            !ct.seq_adjusting(),
            format_args!("seqadj_reset left the entry translating"),
        );
    }
}
