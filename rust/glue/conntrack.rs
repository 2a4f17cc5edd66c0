// SPDX-License-Identifier: GPL-2.0

//! Connection tracking (`include/net/netfilter/nf_conntrack.h`).

use super::net::Net;
use super::skb::Skb;
use crate::sys;
use core::mem::offset_of;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering};
use kernel::error::{code::ENOMEM, to_result, Result};
use kernel::types::Opaque;

/// A reference on conntrack's per-namespace hooks for `family`, as every xtables extension
/// that needs conntrack takes one while its rule exists. Dropping it puts the reference.
pub(crate) struct NetnsRef<'a> {
    net: &'a Net,
    family: u8,
}

impl<'a> NetnsRef<'a> {
    /// Takes the reference (`nf_ct_netns_get`).
    pub(crate) fn get(net: &'a Net, family: u8) -> Result<Self> {
        // SAFETY: `net` is live (`Net` invariant); nf_ct_netns_get accepts any family.
        to_result(unsafe { sys::nf_ct_netns_get(net.as_ptr(), family) })?;
        Ok(Self { net, family })
    }

    /// Keeps the reference past this value's life: the rule now owns it and
    /// [`put_owned`] releases it when the rule is destroyed.
    pub(crate) fn keep(self) {
        core::mem::forget(self);
    }
}

impl Drop for NetnsRef<'_> {
    fn drop(&mut self) {
        put_owned(self.net, self.family);
    }
}

/// Releases a reference that a rule kept with [`NetnsRef::keep`].
pub(crate) fn put_owned(net: &Net, family: u8) {
    // SAFETY: `net` is live and the caller owns one reference for `family`.
    unsafe { sys::nf_ct_netns_put(net.as_ptr(), family) };
}

/// A conntrack entry (`struct nf_conn`).
///
/// # Invariants
///
/// A `&Conn` is only made from an entry the caller holds a reference on (through a packet
/// or a template) for the reference's lifetime.
#[repr(transparent)]
pub(crate) struct Conn(Opaque<sys::nf_conn>);

/// `CTINFO2DIR`: whether a `ctinfo` is of the reply direction.
pub(crate) fn is_reply(ctinfo: u32) -> bool {
    ctinfo >= sys::ip_conntrack_info_IP_CT_IS_REPLY
}

impl Conn {
    pub(crate) fn as_ptr(&self) -> *mut sys::nf_conn {
        self.0.get()
    }

    /// The entry and `ctinfo` of a packet (`nf_ct_get`); none for untracked packets.
    pub(crate) fn of(skb: &Skb) -> Option<(&Conn, u32)> {
        let mut ctinfo = 0;
        // SAFETY: the packet is live; it holds a reference on its entry while it lives.
        let ct = unsafe { sys::rsynproxy_ct_get(skb.as_ptr(), &mut ctinfo) };
        // SAFETY: non-null entries are live for as long as the packet (type invariant).
        (!ct.is_null()).then(|| (unsafe { &*ct.cast::<Conn>() }, ctinfo))
    }

    /// What the hook works on (`rsynproxy_hook_entry`): the packet's entry, its `ctinfo`,
    /// its synproxy extension and the offset of the TCP header, when the entry tracks TCP,
    /// has the extension, the packet is TCP (not an ICMP error about the entry, not a later
    /// IPv6 fragment) and did not come back through the loopback device (it was seen on its
    /// way out). One call for the tests every packet of every connection meets.
    #[inline]
    pub(crate) fn hooked(skb: &Skb, ipv6: bool) -> Option<(&TcpConn, u32, &SynproxyExt, usize)> {
        let (mut ctinfo, mut thoff) = (0, 0);
        let mut sp = core::ptr::null_mut();
        // SAFETY: the packet is live, at a netfilter hook (its network header set and in
        // the linear part); it holds a reference on its entry while it lives; the
        // out-parameters are locals.
        let ct = unsafe {
            sys::rsynproxy_hook_entry(skb.as_ptr(), ipv6, &mut ctinfo, &mut sp, &mut thoff)
        };
        if ct.is_null() || sp.is_null() {
            return None;
        }
        // SAFETY: a non-null entry is live for as long as the packet, and the helper checked
        // that its tuple is TCP, so it is a valid TcpConn (transparent over Conn); its
        // extension area lives as long as the entry.
        let (ct, sp) = unsafe { (&*ct.cast::<TcpConn>(), &*sp.cast::<SynproxyExt>()) };
        Some((ct, ctinfo, sp, thoff as usize))
    }

    /// Starts translating sequence numbers of direction `ctinfo` by `off`
    /// (`nf_ct_seqadj_init`; does nothing for 0).
    pub(crate) fn seqadj_init(&self, ctinfo: u32, off: i32) {
        // SAFETY: the entry is live and carries the seqadj extension (synproxy template).
        unsafe { sys::nf_ct_seqadj_init(self.as_ptr(), ctinfo, off) };
    }

    /// Whether conntrack translates this entry's sequence numbers (`IPS_SEQ_ADJUST`).
    pub(crate) fn seq_adjusting(&self) -> bool {
        // SAFETY: the entry is live (type invariant), so `status` is valid for its life; C
        // changes it only with atomic bit operations (set_bit, clear_bit), so a relaxed
        // atomic load of the aligned word is the `test_bit` C would do.
        let status = unsafe {
            AtomicUsize::from_ptr((&raw mut (*self.as_ptr()).status).cast::<usize>())
                .load(Ordering::Relaxed)
        };
        status & sys::ip_conntrack_status_IPS_SEQ_ADJUST as usize != 0
    }

    /// Marks the entry as translating sequence numbers with the offsets it has (zero ones
    /// for an entry `seqadj_init` was given 0, whose bit it leaves clear).
    pub(crate) fn seq_adjust_on(&self) {
        // SAFETY: the entry is live; the helper sets one status bit atomically (set_bit).
        unsafe { sys::rsynproxy_seq_adjust_on(self.as_ptr()) };
    }

    /// Forgets any sequence translation (a connection reopened on this entry).
    pub(crate) fn seqadj_reset(&self) {
        // SAFETY: the entry is live; the helper takes ct->lock.
        unsafe { sys::rsynproxy_seqadj_reset(self.as_ptr()) };
    }

    /// Queues a conntrack event (`IPCT_SYNPROXY`, `IPCT_SEQADJ`) for ctnetlink listeners.
    pub(crate) fn event(&self, event: u32) {
        // SAFETY: the entry is live.
        unsafe { sys::rsynproxy_ct_event(self.as_ptr(), event) };
    }
}

/// A conntrack entry of a TCP connection.
///
/// # Invariants
///
/// As for [`Conn`], and the entry's original tuple is TCP, so its `proto` union holds the
/// TCP tracker's `ip_ct_tcp`.
#[repr(transparent)]
pub(crate) struct TcpConn(Conn);

impl TcpConn {
    /// The entry, for what is not TCP-specific.
    pub(crate) fn conn(&self) -> &Conn {
        &self.0
    }

    fn tcp(&self) -> *mut sys::ip_ct_tcp {
        // SAFETY: the entry is live (type invariant); only the field address is taken.
        unsafe { &raw mut (*self.0.as_ptr()).proto.tcp }
    }

    /// The TCP tracker's state (`TCP_CONNTRACK_*`), read unlocked as the C hook does.
    pub(crate) fn state(&self) -> u32 {
        // SAFETY: a TCP entry's proto is its ip_ct_tcp (type invariant), live with the entry.
        // The tracker changes the state under ct->lock on other CPUs: a relaxed atomic load
        // of the byte is C's READ_ONCE, the unlocked read nf_synproxy_core.c makes.
        let state = unsafe { AtomicU8::from_ptr(&raw mut (*self.tcp()).state) };
        u32::from(state.load(Ordering::Relaxed))
    }

    /// The largest window the client announced (`seen[ORIGINAL].td_maxwin`).
    pub(crate) fn client_max_window(&self) -> u32 {
        // SAFETY: as for `state`: an aligned u32 of the live ip_ct_tcp, written under
        // ct->lock, read as READ_ONCE.
        unsafe {
            AtomicU32::from_ptr(&raw mut (*self.tcp()).seen[0].td_maxwin).load(Ordering::Relaxed)
        }
    }
}

/// The synproxy extension of an entry (`struct nf_conn_synproxy`): our ISN, the TSval of our
/// cookie and the timestamp offset.
///
/// The packets of one entry run on several CPUs at once (client and backend directions),
/// and ctnetlink may write the fields too, so they are shared words: each is accessed with
/// relaxed atomic loads and stores (READ_ONCE/WRITE_ONCE), never through a reference. The C
/// code makes plain accesses to the same words without a lock; this is no stronger than C.
#[repr(transparent)]
pub(crate) struct SynproxyExt(Opaque<sys::nf_conn_synproxy>);

impl SynproxyExt {
    /// The u32 field at byte offset `off` of the extension.
    fn word(&self, off: usize) -> &AtomicU32 {
        // SAFETY: `off` is the offset of a u32 field (callers use offset_of!), so the pointer
        // is in bounds and aligned; the extension lives as long as `self` (see
        // Conn::synproxy), and every Rust access to the fields goes through atomics.
        unsafe { AtomicU32::from_ptr(self.0.get().cast::<u8>().add(off).cast::<u32>()) }
    }

    pub(crate) fn isn(&self) -> u32 {
        self.word(offset_of!(sys::nf_conn_synproxy, isn))
            .load(Ordering::Relaxed)
    }

    pub(crate) fn set_isn(&self, v: u32) {
        self.word(offset_of!(sys::nf_conn_synproxy, isn))
            .store(v, Ordering::Relaxed)
    }

    pub(crate) fn its(&self) -> u32 {
        self.word(offset_of!(sys::nf_conn_synproxy, its))
            .load(Ordering::Relaxed)
    }

    pub(crate) fn set_its(&self, v: u32) {
        self.word(offset_of!(sys::nf_conn_synproxy, its))
            .store(v, Ordering::Relaxed)
    }

    pub(crate) fn tsoff(&self) -> u32 {
        self.word(offset_of!(sys::nf_conn_synproxy, tsoff))
            .load(Ordering::Relaxed)
    }

    pub(crate) fn set_tsoff(&self, v: u32) {
        self.word(offset_of!(sys::nf_conn_synproxy, tsoff))
            .store(v, Ordering::Relaxed)
    }
}

/// The per-namespace template backend SYNs carry: the entry conntrack makes for them gets
/// the seqadj and synproxy extensions.
///
/// # Invariants
///
/// `0` is a template from `rsynproxy_tmpl_alloc` on which this value holds the reference.
pub(crate) struct Template(NonNull<sys::nf_conn>);

// SAFETY: the template is immutable after creation and reference counted.
unsafe impl Send for Template {}
// SAFETY: as above.
unsafe impl Sync for Template {}

impl Template {
    /// Allocates the template for `net` (may sleep).
    pub(crate) fn new(net: &Net) -> Result<Self> {
        // SAFETY: `net` is live.
        NonNull::new(unsafe { sys::rsynproxy_tmpl_alloc(net.as_ptr()) })
            .map(Template)
            .ok_or(ENOMEM)
    }

    pub(crate) fn conn(&self) -> &Conn {
        // SAFETY: we hold a reference (type invariant).
        unsafe { &*self.0.as_ptr().cast::<Conn>() }
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        // SAFETY: drops the reference we hold (type invariant).
        unsafe { sys::rsynproxy_ct_put(self.0.as_ptr()) };
    }
}
