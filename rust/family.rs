// SPDX-License-Identifier: GPL-2.0

//! The one seam between the family-generic proxy and IPv4/IPv6: reading the IP header,
//! syncookies, building and sending IP packets.

use crate::glue::net::Net;
use crate::glue::skb::{NewSkb, Skb};
use crate::glue::syncookie::{self, Aligned};
use crate::proto::tcp::HDR_LEN;
use crate::proto::wire::{self, IPV4_LEN, IPV6_LEN};
use crate::sys;

/// What a packet the proxy builds carries for conntrack in OUTPUT and POSTROUTING.
pub(crate) enum Track<'a> {
    /// A reference on this entry, as this `ctinfo`.
    Entry(&'a crate::glue::conntrack::Conn, u32),
    /// Nothing to look up: conntrack passes the packet by.
    Untracked,
    /// No entry: conntrack in OUTPUT looks it up like any local packet.
    Lookup,
}

/// The IP header of the packet being handled.
pub(crate) enum Ip {
    V4(Aligned<IPV4_LEN>),
    V6(Aligned<IPV6_LEN>),
}

impl Ip {
    /// Copies the fixed IP header at the start of `skb`.
    pub(crate) fn read(skb: &Skb, ipv6: bool) -> Option<Ip> {
        if ipv6 {
            Some(Ip::V6(Aligned(*skb.peek_array(0, &mut [0u8; IPV6_LEN])?)))
        } else {
            Some(Ip::V4(Aligned(*skb.peek_array(0, &mut [0u8; IPV4_LEN])?)))
        }
    }

    /// Offset of the TCP header in IPv4 packet `skb` if its protocol is TCP, from the
    /// header in place (the hook's way: no copy of the header).
    pub(crate) fn v4_tcp_offset_of(skb: &Skb) -> Option<usize> {
        let mut buf = [0u8; IPV4_LEN];
        let h = skb.peek_array(0, &mut buf)?;
        (h[9] == sys::IPPROTO_TCP as u8).then(|| usize::from(h[0] & 0xf) * 4)
    }

    pub(crate) fn is_v6(&self) -> bool {
        matches!(self, Ip::V6(_))
    }

    fn saddr(&self) -> &[u8] {
        match self {
            Ip::V4(h) => &h.0[12..16],
            Ip::V6(h) => &h.0[8..24],
        }
    }

    fn daddr(&self) -> &[u8] {
        match self {
            Ip::V4(h) => &h.0[16..20],
            Ip::V6(h) => &h.0[24..40],
        }
    }

    /// The packet's source address (for log lines).
    pub(crate) fn source(&self) -> core::net::IpAddr {
        match self {
            Ip::V4(h) => core::net::IpAddr::from([h.0[12], h.0[13], h.0[14], h.0[15]]),
            Ip::V6(h) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&h.0[8..24]);
                core::net::IpAddr::from(a)
            }
        }
    }

    /// A syncookie ISN for this SYN (`th` its TCP header), encoding the client MSS `mss`.
    pub(crate) fn cookie_init(&self, th: &Aligned<HDR_LEN>, mss: u16) -> u32 {
        match self {
            Ip::V4(h) => syncookie::v4_init(h, th, mss).0,
            Ip::V6(h) => syncookie::v6_init(h, th, mss).0,
        }
    }

    /// The MSS the cookie of ACK `th` decodes to; 0 if it does not check.
    pub(crate) fn cookie_check(&self, th: &Aligned<HDR_LEN>) -> u16 {
        match self {
            Ip::V4(h) => syncookie::v4_check(h, th),
            Ip::V6(h) => syncookie::v6_check(h, th),
        }
    }

    /// The packet carrying TCP segment `seg` (checksum zero, filled in here) from this
    /// packet's source to its destination, or back (`reverse`).
    pub(crate) fn packet(&self, net: &Net, reverse: bool, seg: &mut [u8]) -> Option<NewSkb> {
        let (src, dst) = if reverse {
            (self.daddr(), self.saddr())
        } else {
            (self.saddr(), self.daddr())
        };
        wire::set_tcp_checksum(src, dst, seg);
        match self {
            Ip::V4(_) => {
                let (mut s, mut d) = ([0u8; 4], [0u8; 4]);
                s.copy_from_slice(src);
                d.copy_from_slice(dst);
                NewSkb::build(&wire::ipv4_header(s, d, net.ip4_ttl(), seg.len()), seg)
            }
            Ip::V6(_) => {
                let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
                s.copy_from_slice(src);
                d.copy_from_slice(dst);
                NewSkb::build(
                    &wire::ipv6_header(s, d, net.ip6_hop_limit(), seg.len()),
                    seg,
                )
            }
        }
    }

    /// Sends what [`Ip::packet`] builds, routed like `orig`, with the conntrack state `ct`.
    pub(crate) fn send(&self, net: &Net, orig: &Skb, reverse: bool, seg: &mut [u8], ct: Track<'_>) {
        let Some(skb) = self.packet(net, reverse, seg) else {
            return;
        };
        match ct {
            Track::Entry(ct, ctinfo) => skb.attach(ct, ctinfo),
            Track::Untracked => skb.untrack(),
            Track::Lookup => {}
        }
        skb.send(net, orig, self.is_v6());
    }
}
