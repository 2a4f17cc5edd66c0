// SPDX-License-Identifier: GPL-2.0

//! xtables targets (`include/linux/netfilter/x_tables.h`).

use super::{net::Net, CShared};
use crate::proto::info::{Info, ProtoMatch};
use crate::sys;
use kernel::error::{to_result, Result};

/// Registered xtables targets; unregistered on drop.
pub(crate) struct Registration<const N: usize>(&'static CShared<[sys::xt_target; N]>);

impl<const N: usize> Registration<N> {
    /// Registers every target in `targets`, owned by `module` (xtables takes a reference on
    /// it for each rule). The owner comes from `Module::init`'s argument: the kernel crate's
    /// `THIS_MODULE` static is gone in 7.3.
    pub(crate) fn register(
        targets: &'static CShared<[sys::xt_target; N]>,
        module: &'static kernel::ThisModule,
    ) -> Result<Self> {
        let t = targets.get();
        for i in 0..N {
            // SAFETY: not registered yet, so C holds no pointer to the array and nothing else
            // writes it: module init, our only caller, runs once and before any registration.
            unsafe { (*t)[i].me = module.as_ptr().cast() };
        }
        // SAFETY: the array is static, so it outlives the registration, and is only reached
        // through the raw pointer from here on (CShared invariant).
        to_result(unsafe { sys::xt_register_targets(t.cast(), N as u32) })?;
        Ok(Self(targets))
    }
}

impl<const N: usize> Drop for Registration<N> {
    fn drop(&mut self) {
        // SAFETY: registered in `register`. xtables holds a module reference for every rule
        // using the target, so no rule is left when the module (and this value) goes away.
        unsafe { sys::xt_unregister_targets(self.0.get().cast(), N as u32) };
    }
}

/// Reads the rule's `struct xt_synproxy_info`.
///
/// # Safety
///
/// `ptr` points to the target data of a rule of a target registered with
/// `targetsize = sizeof(struct xt_synproxy_info)`.
unsafe fn read_info(ptr: *const kernel::ffi::c_void) -> Info {
    // SAFETY: xtables checked the blob's size against targetsize (caller's guarantee).
    let raw = unsafe { &*ptr.cast::<sys::nf_synproxy_info>() };
    Info {
        options: raw.options,
        wscale: raw.wscale,
        mss: raw.mss,
    }
}

/// The argument of `checkentry`.
///
/// # Invariants
///
/// Wraps the parameter xtables passes to the checkentry of a target registered with
/// `targetsize = sizeof(struct xt_synproxy_info)`; `entryinfo` is an `ipt_entry` for
/// NFPROTO_IPV4 and an `ip6t_entry` for NFPROTO_IPV6 (nft_compat builds the same).
pub(crate) struct CheckParam<'a>(&'a sys::xt_tgchk_param);

impl<'a> CheckParam<'a> {
    /// # Safety
    ///
    /// `ptr` is the parameter of a checkentry call of such a target, live for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *const sys::xt_tgchk_param) -> Self {
        // SAFETY: the caller guarantees validity for 'a.
        Self(unsafe { &*ptr })
    }

    /// The namespace the rule is inserted in.
    pub(crate) fn net(&self) -> &'a Net {
        // SAFETY: xtables holds the namespace for the duration of checkentry.
        unsafe { Net::from_raw(self.0.net) }
    }

    /// NFPROTO_IPV4 or NFPROTO_IPV6.
    pub(crate) fn family(&self) -> u8 {
        self.0.family
    }

    /// The target's options.
    pub(crate) fn info(&self) -> Info {
        // SAFETY: targinfo is the rule's target data (type invariant).
        unsafe { read_info(self.0.targinfo) }
    }

    /// The rule's protocol match.
    pub(crate) fn proto_match(&self) -> ProtoMatch {
        if u32::from(self.0.family) == sys::NFPROTO_IPV6 {
            // SAFETY: an ip6t_entry for IPv6 (type invariant).
            let ip6 = unsafe { &(*self.0.entryinfo.cast::<sys::ip6t_entry>()).ipv6 };
            ProtoMatch {
                proto: (u32::from(ip6.flags) & sys::RSYNPROXY_IP6T_F_PROTO != 0)
                    .then_some(ip6.proto),
                inverted: u32::from(ip6.invflags) & sys::RSYNPROXY_XT_INV_PROTO != 0,
            }
        } else {
            // SAFETY: an ipt_entry for IPv4 (type invariant).
            let ip = unsafe { &(*self.0.entryinfo.cast::<sys::ipt_entry>()).ip };
            ProtoMatch {
                proto: (ip.proto != 0).then_some(ip.proto),
                inverted: u32::from(ip.invflags) & sys::RSYNPROXY_XT_INV_PROTO != 0,
            }
        }
    }
}

/// The argument of `destroy`.
///
/// # Invariants
///
/// Wraps the parameter xtables passes to destroy.
pub(crate) struct DestroyParam<'a>(&'a sys::xt_tgdtor_param);

impl<'a> DestroyParam<'a> {
    /// # Safety
    ///
    /// `ptr` is the parameter of a destroy call, live for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *const sys::xt_tgdtor_param) -> Self {
        // SAFETY: the caller guarantees validity for 'a.
        Self(unsafe { &*ptr })
    }

    /// The namespace the rule lived in.
    pub(crate) fn net(&self) -> &'a Net {
        // SAFETY: xtables holds the namespace for the duration of destroy.
        unsafe { Net::from_raw(self.0.net) }
    }

    /// NFPROTO_IPV4 or NFPROTO_IPV6.
    pub(crate) fn family(&self) -> u8 {
        self.0.family
    }
}

/// The argument of the target function.
///
/// # Invariants
///
/// Wraps the parameter xtables passes to the target of a rule whose target data is an
/// `xt_synproxy_info`; its hook state and namespace are live for the call.
pub(crate) struct ActionParam<'a>(&'a sys::xt_action_param);

impl<'a> ActionParam<'a> {
    /// # Safety
    ///
    /// `ptr` is the parameter of a target call of such a rule, live for `'a`.
    pub(crate) unsafe fn from_raw(ptr: *const sys::xt_action_param) -> Self {
        // SAFETY: the caller guarantees validity for 'a.
        Self(unsafe { &*ptr })
    }

    fn state(&self) -> &'a sys::nf_hook_state {
        // SAFETY: the hook state is live for the call (type invariant).
        unsafe { &*self.0.state }
    }

    /// The namespace the packet is in.
    pub(crate) fn net(&self) -> &'a Net {
        // SAFETY: live for the call (type invariant).
        unsafe { Net::from_raw(self.state().net) }
    }

    /// The hook (`NF_INET_*`).
    pub(crate) fn hook(&self) -> u32 {
        u32::from(self.state().hook)
    }

    /// NFPROTO_IPV4 or NFPROTO_IPV6.
    pub(crate) fn family(&self) -> u8 {
        self.state().pf
    }

    /// Offset of the TCP header from `skb->data`.
    pub(crate) fn thoff(&self) -> usize {
        self.0.thoff as usize
    }

    /// The rule's options.
    pub(crate) fn info(&self) -> Info {
        // SAFETY: targinfo is the rule's target data (type invariant).
        unsafe { read_info(self.0.__bindgen_anon_2.targinfo) }
    }
}
