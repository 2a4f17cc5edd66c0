// SPDX-License-Identifier: GPL-2.0

//! The xtables target `RSYNPROXY` for IPv4 and IPv6 (`ipt_SYNPROXY.c`, `ip6t_SYNPROXY.c`).

use crate::glue::{conntrack, xt, CShared};
use crate::proto::info::check_rule;
use crate::sys;
use kernel::ffi::{c_int, c_uint};
use kernel::prelude::*;

/// The target's name as iptables spells it.
const NAME: &[u8] = b"RSYNPROXY";

const fn target(family: u32) -> sys::xt_target {
    // SAFETY: all-zero is a valid xt_target (no callbacks, empty list head).
    let mut t: sys::xt_target = unsafe { core::mem::zeroed() };
    let mut i = 0;
    while i < NAME.len() {
        t.name[i] = NAME[i];
        i += 1;
    }
    t.target = Some(tg_target);
    t.checkentry = Some(tg_check);
    t.destroy = Some(tg_destroy);
    t.me = crate::THIS_MODULE.as_ptr().cast();
    t.targetsize = core::mem::size_of::<sys::nf_synproxy_info>() as c_uint;
    t.hooks =
        (1 << sys::nf_inet_hooks_NF_INET_LOCAL_IN) | (1 << sys::nf_inet_hooks_NF_INET_FORWARD);
    t.family = family as u16;
    t
}

static TARGETS: CShared<[sys::xt_target; 2]> =
    CShared::new([target(sys::NFPROTO_IPV4), target(sys::NFPROTO_IPV6)]);

/// Registers `RSYNPROXY` for both families.
pub(crate) fn register() -> Result<xt::Registration<2>> {
    xt::Registration::register(&TARGETS)
}

/// Packets are passed on until the data path lands.
///
/// # Safety
///
/// Called by xtables with a live skb and parameter.
unsafe extern "C" fn tg_target(
    _skb: *mut sys::sk_buff,
    _par: *const sys::xt_action_param,
) -> c_uint {
    sys::RSYNPROXY_XT_CONTINUE
}

/// checkentry: refuses what the data path could not honour, then holds conntrack for the
/// rule's life.
///
/// # Safety
///
/// `par` is a checkentry parameter for this target, live for the call.
pub(crate) unsafe extern "C" fn tg_check(par: *const sys::xt_tgchk_param) -> c_int {
    // SAFETY: xtables calls checkentry with a valid parameter for our target.
    let par = unsafe { xt::CheckParam::from_raw(par) };
    if let Err(why) = check_rule(par.proto_match(), &par.info()) {
        // SAFETY: no preconditions.
        if unsafe { sys::rsynproxy_ratelimit() } {
            pr_info!("RSYNPROXY rule refused: {}\n", why);
        }
        return EINVAL.to_errno();
    }
    match conntrack::NetnsRef::get(par.net(), par.family()) {
        Ok(r) => {
            r.keep();
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// destroy: releases what checkentry took.
///
/// # Safety
///
/// `par` is the destroy parameter of a rule whose checkentry succeeded.
pub(crate) unsafe extern "C" fn tg_destroy(par: *const sys::xt_tgdtor_param) {
    // SAFETY: xtables calls destroy with a valid parameter.
    let par = unsafe { xt::DestroyParam::from_raw(par) };
    conntrack::put_owned(par.net(), par.family());
}
