// SPDX-License-Identifier: GPL-2.0

//! The kernel's SYN cookies (`net/ipv4/syncookies.c`, `net/ipv6/syncookies.c`): the TCP
//! stack's secret and MSS tables, so the cookies are the same as the stack's own and as the
//! BPF syncookie helpers'.
//!
//! The functions read only the addresses, ports and sequence numbers of the headers they are
//! given, so they get aligned copies rather than pointers into the packet.

use crate::proto::tcp::HDR_LEN;
use crate::proto::wire::{IPV4_LEN, IPV6_LEN};
use crate::sys;

/// Header bytes aligned for the C structs they are read as.
#[repr(C, align(8))]
pub(crate) struct Aligned<const N: usize>(pub(crate) [u8; N]);

/// A cookie ISN for a SYN with IPv4 header `ip` and TCP header `th` (the client's), encoding
/// the largest table MSS not above `mss`; returns it and that MSS.
pub(crate) fn v4_init(ip: &Aligned<IPV4_LEN>, th: &Aligned<HDR_LEN>, mss: u16) -> (u32, u16) {
    let mut mss = mss;
    // SAFETY: both buffers are whole, aligned iphdr/tcphdr images; `mss` is a local.
    let isn = unsafe {
        sys::__cookie_v4_init_sequence(ip.0.as_ptr().cast(), th.0.as_ptr().cast(), &mut mss)
    };
    (isn, mss)
}

/// The MSS a cookie decodes to, 0 when invalid or expired. `th` is the ACK's header: the
/// cookie is its ack_seq - 1 and the client ISN its seq - 1.
pub(crate) fn v4_check(ip: &Aligned<IPV4_LEN>, th: &Aligned<HDR_LEN>) -> u16 {
    // SAFETY: as in v4_init.
    let mss = unsafe { sys::__cookie_v4_check(ip.0.as_ptr().cast(), th.0.as_ptr().cast()) };
    u16::try_from(mss).unwrap_or(0)
}

/// IPv6 [`v4_init`].
pub(crate) fn v6_init(ip: &Aligned<IPV6_LEN>, th: &Aligned<HDR_LEN>, mss: u16) -> (u32, u16) {
    let mut mss = mss;
    // SAFETY: as in v4_init, with an ipv6hdr image.
    let isn = unsafe {
        sys::__cookie_v6_init_sequence(ip.0.as_ptr().cast(), th.0.as_ptr().cast(), &mut mss)
    };
    (isn, mss)
}

/// IPv6 [`v4_check`].
pub(crate) fn v6_check(ip: &Aligned<IPV6_LEN>, th: &Aligned<HDR_LEN>) -> u16 {
    // SAFETY: as in v6_init.
    let mss = unsafe { sys::__cookie_v6_check(ip.0.as_ptr().cast(), th.0.as_ptr().cast()) };
    u16::try_from(mss).unwrap_or(0)
}
