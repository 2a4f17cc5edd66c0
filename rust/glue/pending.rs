// SPDX-License-Identifier: GPL-2.0

//! The per-CPU slot that carries what the target knows of a backend SYN (what the client
//! was told, [`crate::proto::mismatch::Told::stash`], and the TSecr it sent) to the hook
//! that sees the SYN's new conntrack entry (`rsynproxy_pending_*` in helpers.c), which then
//! need not read the SYN's options again.
//!
//! The target sends the SYN with `ip_local_out`, which runs OUTPUT (conntrack makes the entry
//! from our template) and POST_ROUTING (our hook) before it returns, on this CPU. The slot is
//! keyed by the SYN's sequence and acknowledgment numbers: a packet that is not that SYN
//! never takes it, and if the SYN's path is not synchronous (a queue in OUTPUT), the hook
//! finds nothing and the connection runs without detection, as with SYNPROXY.

use crate::sys;

/// The slot, armed while it lives; dropping it disarms the slot.
pub(crate) struct Armed(());

/// Arms this CPU's slot for the backend SYN with `seq` and `ack`; `its`: the TSecr of its
/// timestamp option, if it has one.
pub(crate) fn arm(seq: u32, ack: u32, stash: u32, its: Option<u32>) -> Armed {
    // SAFETY: no preconditions: the helper disables preemption around the per-CPU access.
    unsafe { sys::rsynproxy_pending_set(seq, ack, stash, its.is_some(), its.unwrap_or(0)) };
    Armed(())
}

impl Armed {
    /// Leaves the slot armed past this guard, for a SYN sent once the target has returned
    /// (`Verdict::Send`): `skb::handle` disarms it when the SYN is out.
    pub(crate) fn keep(self) {
        core::mem::forget(self);
    }
}

/// Disarms this CPU's slot.
pub(crate) fn disarm() {
    // SAFETY: as in `arm`.
    unsafe { sys::rsynproxy_pending_clear() };
}

impl Drop for Armed {
    fn drop(&mut self) {
        disarm();
    }
}

/// What [`arm`] left for a backend SYN.
pub(crate) struct Pending {
    /// What the client was told (0: nothing to keep).
    pub(crate) stash: u32,
    /// The SYN's TSecr, if it has a timestamp option.
    pub(crate) its: Option<u32>,
}

/// Takes what was armed for the backend SYN with `seq` and `ack`, if this CPU's slot holds it.
pub(crate) fn take(seq: u32, ack: u32) -> Option<Pending> {
    let (mut stash, mut has_its, mut its) = (0, false, 0);
    // SAFETY: as in `arm`; the out-parameters are locals.
    let found =
        unsafe { sys::rsynproxy_pending_take(seq, ack, &mut stash, &mut has_its, &mut its) };
    found.then_some(Pending {
        stash,
        its: has_its.then_some(its),
    })
}

/// Whether a mismatch may be logged now (5 s, burst 10; its own budget).
pub(crate) fn may_log() -> bool {
    // SAFETY: no preconditions.
    unsafe { sys::rsynproxy_ratelimit_mismatch() }
}
