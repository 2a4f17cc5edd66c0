// SPDX-License-Identifier: GPL-2.0

//! KUnit suite `rsynproxy`, run when the module loads (6.12 has no `#[kunit_tests]`: the
//! suite is placed in `.kunit_test_suites` by hand). Results: debugfs `kunit/rsynproxy/results`.

use crate::glue::net::Net;
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
        kernel::kunit_assert!("rsynproxy", "rust/ktests.rs", 0, false);
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

/// Runs the real checkentry (and destroy, on success) in init_net; returns its result.
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
    let ret = unsafe { target::tg_check(&par) };
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
    // The refusals above logged through the message budget; a user's first ones must not be
    // silenced by a test run at load.
    // SAFETY: no preconditions.
    unsafe { sys::rsynproxy_ratelimit_reset() };
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
    let st = pernet::state(Net::init());
    let before = st.totals();
    st.count(Stat::SynReceived);
    st.count(Stat::ConnReopened);
    st.count(Stat::ConnReopened);
    let after = st.totals();
    let delta: [u32; 5] = core::array::from_fn(|i| after[i].wrapping_sub(before[i]));
    check(
        delta == [1, 0, 0, 0, 2],
        format_args!("counter deltas {delta:?}"),
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
        off!(net, proc_net_stat),
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
            unsafe { kernel::str::CStr::from_char_ptr(e.name) }.as_bytes() == name.as_bytes()
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
static mut CASES: [kunit_case; 5] = [
    case(c"checkentry_ipv4", checkentry_ipv4),
    case(c"checkentry_ipv6", checkentry_ipv6),
    case(c"counters_per_cpu", counters_per_cpu),
    case(c"layout_matches_c", layout_matches_c),
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
