// SPDX-License-Identifier: GPL-2.0

//! The xtables target `RSYNPROXY` for IPv4 and IPv6 (`ipt_SYNPROXY.c`, `ip6t_SYNPROXY.c`).

use crate::glue::net::Net;
use crate::glue::{conntrack, skb, xt, CShared};
use crate::proto::info::{check_rule, RuleError};
use crate::sys;
use crate::{engine, pernet};
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
    t.targetsize = core::mem::size_of::<sys::nf_synproxy_info>() as c_uint;
    t.hooks =
        (1 << sys::nf_inet_hooks_NF_INET_LOCAL_IN) | (1 << sys::nf_inet_hooks_NF_INET_FORWARD);
    t.family = family as u16;
    t
}

static TARGETS: CShared<[sys::xt_target; 2]> =
    CShared::new([target(sys::NFPROTO_IPV4), target(sys::NFPROTO_IPV6)]);

/// Registers `RSYNPROXY` for both families, owned by `module`.
pub(crate) fn register(module: &'static ThisModule) -> Result<xt::Registration<2>> {
    xt::Registration::register(&TARGETS, module)
}

/// The target function.
///
/// # Safety
///
/// Called by xtables with a live skb and the parameter of a rule of this target.
unsafe extern "C" fn tg_target(skb: *mut sys::sk_buff, par: *const sys::xt_action_param) -> c_uint {
    // SAFETY: xtables' call contract: the parameter, its hook state and namespace are live for
    // the call.
    let par = unsafe { xt::ActionParam::from_raw(par) };
    let net = par.net();
    // SAFETY: a rule of this target is running in `net`, and every rule holds a reference on
    // the namespace's state from its checkentry (hooks_get) until its destroy, which xtables
    // calls only once the rule can no longer run.
    let st = unsafe { pernet::state(net) };
    let ipv6 = u32::from(par.family()) == sys::NFPROTO_IPV6;
    // SAFETY: xtables hands us the packet until we return a verdict.
    unsafe {
        skb::handle(skb, |skb| {
            engine::target(skb, net, st, par.hook(), par.thoff(), ipv6, &par.info())
        })
    }
}

/// The netfilter hook.
///
/// # Safety
///
/// Called by netfilter with a live skb and hook state.
pub(crate) unsafe extern "C" fn nf_hook(
    _priv: *mut kernel::ffi::c_void,
    skb: *mut sys::sk_buff,
    state: *const sys::nf_hook_state,
) -> c_uint {
    // SAFETY: netfilter's call contract: the state and its namespace outlive the call.
    let state = unsafe { &*state };
    // SAFETY: as above.
    let net = unsafe { Net::from_raw(state.net) };
    // Looked up only when the hook needs it (handshake packets), not on every packet.
    // SAFETY: our hooks are registered in `net` only while a rule holds the namespace's state
    // (hooks_get registers with the first reference of a family, hooks_put unregisters with
    // the last, waiting for running hooks, before the state can be dropped), and the
    // closure runs only during this call.
    let st = || unsafe { pernet::state(net) };
    let ipv6 = u32::from(state.pf) == sys::NFPROTO_IPV6;
    // SAFETY: netfilter hands us the packet until we return a verdict.
    unsafe { skb::handle(skb, |skb| engine::hook(skb, net, st, ipv6)) }
}

/// Why checkentry refused a rule.
pub(crate) enum Refusal {
    /// The rule asks for something the data path cannot honour (logged, EINVAL).
    Rule(RuleError),
    /// A resource could not be had.
    Error(Error),
}

/// checkentry's work, without the log line: refuses what the data path could not honour,
/// then holds conntrack and the hooks for the rule's life (released by [`tg_destroy`]).
pub(crate) fn checkentry(par: &xt::CheckParam<'_>) -> core::result::Result<(), Refusal> {
    check_rule(par.proto_match(), &par.info()).map_err(Refusal::Rule)?;
    let ct = conntrack::NetnsRef::get(par.net(), par.family()).map_err(Refusal::Error)?;
    pernet::hooks_get(par.net(), par.family()).map_err(Refusal::Error)?;
    ct.keep();
    Ok(())
}

/// checkentry.
///
/// # Safety
///
/// `par` is a checkentry parameter for this target, live for the call.
pub(crate) unsafe extern "C" fn tg_check(par: *const sys::xt_tgchk_param) -> c_int {
    // SAFETY: xtables calls checkentry with a valid parameter for our target.
    let par = unsafe { xt::CheckParam::from_raw(par) };
    match checkentry(&par) {
        Ok(()) => 0,
        Err(Refusal::Rule(why)) => {
            // SAFETY: no preconditions.
            if unsafe { sys::rsynproxy_ratelimit() } {
                // Through format_args!: 7.x's pr_info! takes kernel::fmt::Display, which
                // RuleError (core::fmt::Display) lacks; Arguments has both.
                pr_info!("RSYNPROXY rule refused: {}\n", format_args!("{why}"));
            }
            EINVAL.to_errno()
        }
        Err(Refusal::Error(e)) => e.to_errno(),
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
    pernet::hooks_put(par.net(), par.family());
    conntrack::put_owned(par.net(), par.family());
}
