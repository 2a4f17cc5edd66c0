// SPDX-License-Identifier: GPL-2.0

//! Socket buffers (`include/linux/skbuff.h`): the packet being filtered, and the replies the
//! proxy builds.

use super::net::Net;
use crate::sys;
use core::ptr::NonNull;
use kernel::types::Opaque;

/// A packet handed to a netfilter hook or target, `skb->data` at its network header.
///
/// # Invariants
///
/// A `&Skb` is only made by [`Skb::from_raw`] and lives no longer than the hook call that
/// owns the packet.
#[repr(transparent)]
pub(crate) struct Skb(Opaque<sys::sk_buff>);

impl Skb {
    /// # Safety
    ///
    /// `ptr` is the packet of the running hook or target, valid for `'a`, and `'a` ends before
    /// the packet is stolen, dropped or passed on.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut sys::sk_buff) -> &'a Skb {
        // SAFETY: `Skb` is a transparent wrapper; validity is the caller's guarantee.
        unsafe { &*ptr.cast::<Skb>() }
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

    /// Makes the first `len` bytes linear and writable, then lets `f` change them; `None`
    /// if that failed (no memory, or the packet is shorter).
    pub(crate) fn with_writable<R>(&self, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        let l = u32::try_from(len).ok()?;
        // SAFETY: the packet is live (type invariant).
        if unsafe { sys::skb_ensure_writable(self.as_ptr(), l) } != 0 {
            return None;
        }
        // SAFETY: skb_ensure_writable made `len` bytes from data linear, private and
        // writable; nothing else touches them during this hook call.
        let bytes = unsafe { core::slice::from_raw_parts_mut((*self.as_ptr()).data, len) };
        Some(f(bytes))
    }

    /// Updates the checksum at `check_off` (from data) after a 32-bit word changed, as
    /// `inet_proto_csum_replace4` does (it also maintains CHECKSUM_COMPLETE).
    ///
    /// Call only after [`Skb::with_writable`] covered `check_off + 2`.
    pub(crate) fn csum_replace4(&self, check_off: usize, old: u32, new: u32) {
        // SAFETY: the caller made the checksum field writable; the pointer stays within the
        // linear area.
        unsafe {
            let sum = (*self.as_ptr()).data.add(check_off).cast::<u16>();
            sys::inet_proto_csum_replace4(sum, self.as_ptr(), old.to_be(), new.to_be(), false);
        }
    }

    /// Whether the packet came back through the loopback device (`nf_is_loopback_packet`):
    /// it was already seen on its way out.
    pub(crate) fn is_loopback(&self) -> bool {
        // SAFETY: the packet is live (type invariant).
        unsafe { sys::rsynproxy_is_loopback(self.as_ptr()) }
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

    /// The offset of the TCP header in an IPv6 packet and whether that is where it is
    /// (`ipv6_skip_exthdr`: not a later fragment, next header TCP).
    pub(crate) fn ipv6_tcp_offset(&self) -> Option<usize> {
        let mut hdr = [0u8; 8];
        if !self.copy(0, &mut hdr) {
            return None;
        }
        let mut nexthdr = hdr[6];
        let mut frag_off = 0u16;
        // SAFETY: the packet is live (type invariant); the out-parameters are locals.
        let off = unsafe {
            sys::ipv6_skip_exthdr(
                self.as_ptr(),
                crate::proto::wire::IPV6_LEN as i32,
                &mut nexthdr,
                &mut frag_off,
            )
        };
        (off >= 0 && u32::from(nexthdr) == sys::IPPROTO_TCP && u16::from_be(frag_off) & !7 == 0)
            .then_some(off as usize)
    }
}

/// A packet the proxy builds and sends.
///
/// # Invariants
///
/// `0` is an skb from [`NewSkb::alloc`] that this value owns exclusively.
pub(crate) struct NewSkb(NonNull<sys::sk_buff>);

impl NewSkb {
    /// Allocates a packet of `ip` then `tcp`, with headroom for the link layer (atomic).
    pub(crate) fn build(ip: &[u8], tcp: &[u8]) -> Option<Self> {
        let len = u32::try_from(ip.len() + tcp.len()).ok()?;
        // SAFETY: no preconditions; NULL on failure.
        let skb = NonNull::new(unsafe { sys::rsynproxy_alloc_reply(len) }).map(NewSkb)?;
        for part in [ip, tcp] {
            // SAFETY: the skb is ours and was allocated with room for both parts.
            let dst = unsafe { sys::skb_put(skb.0.as_ptr(), part.len() as u32) };
            // SAFETY: skb_put returned `part.len()` writable bytes that nothing else uses.
            unsafe { core::ptr::copy_nonoverlapping(part.as_ptr(), dst.cast::<u8>(), part.len()) };
        }
        // SAFETY: the skb is ours; the network header starts at data, TCP after `ip`.
        unsafe { sys::rsynproxy_set_headers(skb.0.as_ptr(), ip.len() as u32) };
        Some(skb)
    }

    /// The packet as a hook would see it (tests).
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn as_skb(&self) -> &Skb {
        // SAFETY: the skb is ours and live while `self` is; data is at the network header.
        unsafe { Skb::from_raw(self.0.as_ptr()) }
    }

    /// Gives the packet a reference on conntrack entry `ct` as `ctinfo`.
    pub(crate) fn attach(&self, ct: &super::conntrack::Conn, ctinfo: u32) {
        // SAFETY: the skb is ours and has no entry yet; `ct` is live and gets a reference.
        unsafe { sys::rsynproxy_ct_attach(self.0.as_ptr(), ct.as_ptr(), ctinfo) };
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

impl Drop for NewSkb {
    fn drop(&mut self) {
        // SAFETY: the skb is ours and was not sent (send forgets self).
        unsafe { sys::rsynproxy_free_skb(self.0.as_ptr()) };
    }
}
