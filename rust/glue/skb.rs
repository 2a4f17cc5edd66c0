// SPDX-License-Identifier: GPL-2.0

//! Socket buffers (`include/linux/skbuff.h`): the packet being filtered, and the replies the
//! proxy builds.

use super::conntrack::Conn;
use super::net::Net;
use crate::sys;
use core::ptr::NonNull;
use kernel::types::Opaque;

/// A packet handed to a netfilter hook or target, `skb->data` at its network header.
///
/// # Invariants
///
/// A `Skb` reference is only made by [`Skb::from_raw`], for a packet that stays owned by the
/// running hook (or by a [`NewSkb`]) and is neither freed, stolen nor passed on while the
/// reference lives: [`handle`] frees a packet its closure answered for only after the
/// closure's borrow has ended.
#[repr(transparent)]
pub(crate) struct Skb(Opaque<sys::sk_buff>);

/// What becomes of the packet a hook or target was given.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    /// Let it through (`NF_ACCEPT`).
    Accept,
    /// Drop it (`NF_DROP`): netfilter frees it.
    Drop,
    /// Next rule (`XT_CONTINUE`, targets only).
    Continue,
    /// We answered for it: [`handle`] frees it and returns `NF_STOLEN`.
    Consumed,
    /// It became our answer ([`InPlace`]): [`handle`] sends it and returns `NF_STOLEN`.
    Send(Outgoing),
}

/// A packet the proxy rewrote into its reply ([`InPlace::finish`]), for [`handle`] to send
/// once nothing borrows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Outgoing {
    /// The packet made over.
    skb: NonNull<sys::sk_buff>,
    /// The namespace of the running hook or target.
    net: NonNull<sys::net>,
    ipv6: bool,
    /// A backend SYN: the pending slot stays armed until it is out ([`Outgoing::disarming`]).
    disarm: bool,
}

impl Outgoing {
    /// The packet is a backend SYN whose pending slot the sender left armed
    /// ([`super::pending::Armed::keep`]): [`handle`] disarms it once the SYN is out.
    pub(crate) fn disarming(self) -> Outgoing {
        Outgoing {
            disarm: true,
            ..self
        }
    }
}

/// The conntrack state a packet made over leaves with.
pub(crate) enum Keep<'a> {
    /// The entry it came with, now as this `ctinfo`; with none, untracked.
    Own(u32),
    /// A reference on this entry, as this `ctinfo` (the one it came with is dropped).
    Entry(&'a Conn, u32),
}

/// Runs `f` on the packet of the running hook or target, then carries out `f`'s verdict.
/// A consumed packet is freed here, after `f` returned, so no [`Skb`] reference outlives it.
///
/// # Safety
///
/// `ptr` is the packet netfilter handed to the running hook or target (owned by it until it
/// returns a verdict), `skb->data` at its network header.
pub(crate) unsafe fn handle(
    ptr: *mut sys::sk_buff,
    f: impl FnOnce(&mut Skb) -> Verdict,
) -> kernel::ffi::c_uint {
    // SAFETY: the packet is ours for this call (caller's guarantee), and the reference lives
    // only as long as `f`: it cannot escape, since `f` works for any lifetime and `Verdict`
    // borrows nothing.
    let verdict = f(unsafe { Skb::from_raw(ptr) });
    match verdict {
        Verdict::Accept => sys::NF_ACCEPT,
        Verdict::Drop => sys::NF_DROP,
        Verdict::Continue => sys::RSYNPROXY_XT_CONTINUE,
        Verdict::Consumed => {
            // SAFETY: the packet is ours and `f`'s reference to it is gone; netfilter does
            // not touch it after NF_STOLEN.
            unsafe { sys::rsynproxy_consume_skb(ptr) };
            sys::NF_STOLEN
        }
        // Only `InPlace::finish` makes an `Outgoing`, naming its packet: one for any other
        // (a bug) drops this packet rather than send what was not made over.
        Verdict::Send(out) if out.skb.as_ptr() != ptr => sys::NF_DROP,
        Verdict::Send(out) => {
            // SAFETY: the packet is ours, `f`'s reference to it is gone and it holds a whole
            // reply (`InPlace::finish` made `out` for it, above); the send helper takes it
            // (and frees it on error), routing it from the route it came with. `out.net` is
            // the namespace of the running hook or target, live for this call.
            unsafe {
                if out.ipv6 {
                    sys::rsynproxy_send6(out.net.as_ptr(), ptr, ptr);
                } else {
                    sys::rsynproxy_send4(out.net.as_ptr(), ptr, ptr);
                }
            }
            if out.disarm {
                super::pending::disarm();
            }
            sys::NF_STOLEN
        }
    }
}

impl Skb {
    /// # Safety
    ///
    /// `ptr` is a live packet that the caller owns exclusively for `'a` (the hook's packet, or
    /// one it built), and nothing frees, steals or passes it on during `'a`.
    unsafe fn from_raw<'a>(ptr: *mut sys::sk_buff) -> &'a mut Skb {
        // SAFETY: `Skb` is a transparent wrapper; validity and exclusivity are the caller's
        // guarantee.
        unsafe { &mut *ptr.cast::<Skb>() }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::sk_buff {
        self.0.get()
    }

    /// Copies `out.len()` bytes at `offset` from `data` (linear or not); false if the packet
    /// is shorter.
    pub(crate) fn copy(&self, offset: usize, out: &mut [u8]) -> bool {
        let (Ok(off), Ok(len)) = (i32::try_from(offset), i32::try_from(out.len())) else {
            return false;
        };
        // SAFETY: the packet is live (type invariant); skb_copy_bits checks the bounds and
        // writes at most `len` bytes into `out`.
        unsafe { sys::skb_copy_bits(self.as_ptr(), off, out.as_mut_ptr().cast(), len) == 0 }
    }

    /// The `len` bytes at `offset` from `data` if they are in the linear part.
    #[inline(always)]
    pub(crate) fn linear(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        // SAFETY: the packet is live (type invariant); len and data_len are plain fields
        // that only the packet's owner (the running hook) changes.
        let (skb_len, data_len, data) = unsafe {
            let p = self.as_ptr();
            ((*p).len as usize, (*p).data_len as usize, (*p).data)
        };
        if end <= skb_len.wrapping_sub(data_len) && data_len <= skb_len {
            // SAFETY: `offset..end` lies within the linear part (skb_headlen), which stays
            // in place while the packet is borrowed immutably (reallocating the head takes
            // `&mut Skb`: writable).
            return Some(unsafe { core::slice::from_raw_parts(data.add(offset), len) });
        }
        None
    }

    /// `f` of the `len` bytes at `offset` from `data` (`skb_header_pointer`): in place when
    /// they are in the linear part, else copied into a buffer of `MAX` bytes, which is zeroed
    /// only then (zeroing it before the test cost every established packet); `None` if the
    /// packet is shorter or `len` > `MAX`.
    #[inline(always)]
    pub(crate) fn read_with<const MAX: usize, R>(
        &self,
        offset: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        if let Some(b) = self.linear(offset, len) {
            return Some(f(b));
        }
        let mut buf = [0u8; MAX];
        let b = buf.get_mut(..len)?;
        self.copy(offset, b).then(|| f(b))
    }

    /// [`Skb::read_with`] of a fixed-size header: `f` of the `N` bytes at `offset`.
    #[inline(always)]
    pub(crate) fn read_array<const N: usize, R>(
        &self,
        offset: usize,
        f: impl FnOnce(&[u8; N]) -> R,
    ) -> Option<R> {
        self.read_with::<N, _>(offset, N, |b| b.first_chunk::<N>().map(f))?
    }

    /// Makes the first `len` bytes linear and writable and returns them as a [`Writable`];
    /// `None` if that failed (no memory, or the packet is shorter).
    ///
    /// The region borrows `self` mutably: nothing else can reach the packet (and reallocate
    /// its head) while it lives. A guard, not a closure: the hook's per-packet steps stay in
    /// one function (a closure the compiler leaves out of line costs the established path
    /// measurably).
    #[inline(always)]
    pub(crate) fn writable(&mut self, len: usize) -> Option<Writable<'_>> {
        let l = u32::try_from(len).ok()?;
        // SAFETY: the packet is live (type invariant).
        if unsafe { sys::skb_ensure_writable(self.as_ptr(), l) } != 0 {
            return None;
        }
        // Type invariant of Writable: established just above, and `self` stays mutably
        // borrowed for the region's life.
        Some(Writable { skb: self, len })
    }

    /// Makes this packet, which the caller answers and will not use again, into the buffer of
    /// its reply: `len` zero bytes from `data`, the metadata of a new packet, the conntrack
    /// entry and route it came with. `None`, the packet unchanged, where its data is not its
    /// own (shared or cloned: a packet socket or a mirror holds it), it is not linear, carries
    /// extensions (IPsec, bridge), or has no room: the caller allocates the reply instead.
    #[inline]
    pub(crate) fn recycle(&mut self, len: usize) -> Option<InPlace<'_>> {
        let l = u32::try_from(len).ok()?;
        // SAFETY: the packet is live (type invariant) and `&mut self` keeps any other
        // reference to it (and so to its old bytes) from being used while it changes.
        if !unsafe { sys::rsynproxy_recycle(self.as_ptr(), l) } {
            return None;
        }
        // Type invariant of InPlace: `len` bytes from data are linear, initialised and
        // private; `self` stays mutably borrowed for its life.
        Some(InPlace { skb: self, len })
    }

    /// Whether the TCP checksum is right (`nf_ip_checksum`/`nf_ip6_checksum`); also records
    /// it as verified.
    pub(crate) fn tcp_checksum_ok(&self, ipv6: bool, hook: u32, thoff: usize) -> bool {
        let Ok(off) = u32::try_from(thoff) else {
            return false;
        };
        // SAFETY: the packet is live (type invariant) and `off` is its transport offset.
        let bad = unsafe {
            if ipv6 {
                sys::nf_ip6_checksum(self.as_ptr(), hook, off, sys::IPPROTO_TCP as u8)
            } else {
                sys::nf_ip_checksum(self.as_ptr(), hook, off, sys::IPPROTO_TCP as u8)
            }
        };
        bad == 0
    }
}

/// The first `len` bytes of a packet, made linear, private and writable.
///
/// # Invariants
///
/// `skb_ensure_writable(skb, len)` succeeded and the packet is borrowed mutably for `'a`, so
/// its head is not reallocated and `data..data + len` stays linear and writable.
pub(crate) struct Writable<'a> {
    skb: &'a mut Skb,
    len: usize,
}

impl Writable<'_> {
    /// The writable bytes, from `skb->data`.
    pub(crate) fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes from data are linear and writable (type invariant); the slice
        // borrows `self` mutably, so no other access through this region overlaps it.
        unsafe { core::slice::from_raw_parts_mut((*self.skb.as_ptr()).data, self.len) }
    }

    /// Updates the 16-bit checksum at `check_off` (from data) after a 32-bit word of what it
    /// covers changed from `old` to `new`, as `inet_proto_csum_replace4` does (it also keeps
    /// CHECKSUM_COMPLETE right). False, changing nothing, if the field is not in the region.
    #[inline]
    pub(crate) fn csum_replace4(&mut self, check_off: usize, old: u32, new: u32) -> bool {
        match check_off.checked_add(2) {
            Some(end) if end <= self.len => {}
            _ => return false,
        }
        // SAFETY: the field lies within the writable region (checked above, type invariant);
        // no slice from `bytes` is alive (it would borrow `self`).
        unsafe {
            let sum = (*self.skb.as_ptr()).data.add(check_off).cast::<u16>();
            sys::inet_proto_csum_replace4(sum, self.skb.as_ptr(), old.to_be(), new.to_be(), false);
        }
        true
    }
}

/// A packet whose bytes the proxy writes: a new one ([`NewSkb`]) or one made over
/// ([`InPlace`]).
pub(crate) trait Buffer {
    /// The packet's bytes, from `data`, to be written in place.
    fn bytes_mut(&mut self) -> &mut [u8];

    /// Sets the network header at `data` and TCP after `nh_len` bytes. `partial`: the TCP
    /// checksum field holds the pseudo-header sum and the device completes it
    /// (`CHECKSUM_PARTIAL`, as C's packets); else the checksum is complete.
    fn set_headers(&mut self, nh_len: usize, partial: bool);
}

/// The packet being handled, made into its own reply by [`Skb::recycle`].
///
/// # Invariants
///
/// `rsynproxy_recycle(skb, len)` succeeded: `len` bytes from data are linear, initialised
/// and the packet's own (not shared, not cloned), and the packet is borrowed mutably for
/// `'a`, so nothing else reaches them.
pub(crate) struct InPlace<'a> {
    skb: &'a mut Skb,
    len: usize,
}

impl Buffer for InPlace<'_> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes from data are linear, initialised and private (type invariant);
        // the slice borrows `self` mutably.
        unsafe { core::slice::from_raw_parts_mut((*self.skb.as_ptr()).data, self.len) }
    }

    fn set_headers(&mut self, nh_len: usize, partial: bool) {
        // SAFETY: the packet is ours (type invariant) and holds `len` >= `nh_len` bytes
        // (callers wrote the headers first).
        unsafe { sys::rsynproxy_set_headers(self.skb.as_ptr(), nh_len as u32, partial) };
    }
}

impl InPlace<'_> {
    /// Gives the packet its conntrack state (`keep`); then it is ready for [`handle`] to send
    /// (`Verdict::Send`), routed from the route it came with, in namespace `net`.
    pub(crate) fn finish(self, net: &Net, keep: Keep<'_>, ipv6: bool) -> Outgoing {
        match keep {
            Keep::Own(ctinfo) => {
                let p = self.skb.as_ptr();
                if Conn::of(self.skb).is_some() {
                    // SAFETY: the packet is ours (type invariant); only the ctinfo bits next
                    // to the reference it holds change.
                    unsafe { sys::rsynproxy_ct_set_info(p, ctinfo) };
                } else {
                    // SAFETY: the packet is ours; it holds no entry, so the mark replaces
                    // nothing that needs a put.
                    unsafe { sys::rsynproxy_ct_untracked(p) };
                }
            }
            // SAFETY: the packet is ours; `ct` is live while borrowed and gets its own
            // reference before the one the packet held (maybe on the same entry) is dropped.
            Keep::Entry(ct, ctinfo) => unsafe {
                sys::rsynproxy_ct_replace(self.skb.as_ptr(), ct.as_ptr(), ctinfo)
            },
        }
        // SAFETY: an `Skb` is a live packet and a `Net` a live namespace, never NULL.
        unsafe {
            Outgoing {
                skb: NonNull::new_unchecked(self.skb.as_ptr()),
                net: NonNull::new_unchecked(net.as_ptr()),
                ipv6,
                disarm: false,
            }
        }
    }
}

/// A packet the proxy builds and sends.
///
/// # Invariants
///
/// `0` is an skb from [`NewSkb::alloc`] that this value owns exclusively: linear, its `len`
/// bytes from `data` initialised.
pub(crate) struct NewSkb(NonNull<sys::sk_buff>);

impl NewSkb {
    /// Allocates a packet of `len` zero bytes, with headroom for the link layer (atomic).
    pub(crate) fn alloc(len: usize) -> Option<Self> {
        let len = u32::try_from(len).ok()?;
        // SAFETY: no preconditions; NULL on failure, else a linear skb whose `len` bytes from
        // data are zeroed.
        NonNull::new(unsafe { sys::rsynproxy_alloc_reply(len) }).map(NewSkb)
    }

    /// The packet as a hook would see it (tests).
    #[cfg(rsynproxy_kunit)]
    pub(crate) fn as_skb(&mut self) -> &mut Skb {
        // SAFETY: the skb is ours alone and live while `self` is (type invariant), and `self`
        // stays borrowed while the reference lives; data is at the network header.
        unsafe { Skb::from_raw(self.0.as_ptr()) }
    }

    /// Gives the packet a reference on conntrack entry `ct` as `ctinfo`.
    pub(crate) fn attach(&self, ct: &Conn, ctinfo: u32) {
        // SAFETY: the skb is ours and has no entry yet; `ct` is live and gets a reference.
        unsafe { sys::rsynproxy_ct_attach(self.0.as_ptr(), ct.as_ptr(), ctinfo) };
    }

    /// Marks the packet untracked (`nf_ct_set(skb, NULL, IP_CT_UNTRACKED)`): conntrack in
    /// OUTPUT and POSTROUTING passes it by.
    pub(crate) fn untrack(&self) {
        // SAFETY: `Ip::send` calls this on the skb `Ip::reply` just allocated, before it is
        // sent: it is ours and has no entry. An untracked mark holds no reference, so
        // freeing or sending the skb later needs no put.
        unsafe { sys::rsynproxy_ct_untracked(self.0.as_ptr()) };
    }

    /// Routes the packet like `orig` and sends it out through OUTPUT and POSTROUTING.
    pub(crate) fn send(self, net: &Net, orig: &Skb, ipv6: bool) {
        let skb = self.0.as_ptr();
        core::mem::forget(self);
        // SAFETY: ownership of the skb passes to the send helper, which frees it on error;
        // `orig` (for its route or security context) is live during the call.
        unsafe {
            if ipv6 {
                sys::rsynproxy_send6(net.as_ptr(), orig.as_ptr(), skb);
            } else {
                sys::rsynproxy_send4(net.as_ptr(), orig.as_ptr(), skb);
            }
        }
    }
}

impl Buffer for NewSkb {
    fn bytes_mut(&mut self) -> &mut [u8] {
        let skb = self.0.as_ptr();
        // SAFETY: the skb is ours alone (type invariant) and its `len` bytes from data are
        // linear and initialised; the slice borrows `self` mutably, so nothing else reaches
        // them (or frees the skb) while it lives.
        unsafe { core::slice::from_raw_parts_mut((*skb).data, (*skb).len as usize) }
    }

    fn set_headers(&mut self, nh_len: usize, partial: bool) {
        // SAFETY: the skb is ours (type invariant) and holds at least `nh_len` bytes (callers
        // wrote the headers first).
        unsafe { sys::rsynproxy_set_headers(self.0.as_ptr(), nh_len as u32, partial) };
    }
}

impl Drop for NewSkb {
    fn drop(&mut self) {
        // SAFETY: the skb is ours and was not sent (send forgets self).
        unsafe { sys::rsynproxy_free_skb(self.0.as_ptr()) };
    }
}
