// SPDX-License-Identifier: GPL-2.0

//! The one seam between the family-generic proxy and IPv4/IPv6: reading the IP header,
//! syncookies, building and sending IP packets.

use crate::glue::net::Net;
use crate::glue::skb::{Buffer, NewSkb, Skb};
use crate::glue::syncookie::{self, Aligned};
use crate::proto::tcp::{self, Header, Options, HDR_LEN};
use crate::proto::wire::{self, IPV4_LEN, IPV6_LEN};

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
            skb.read_array(0, |h: &[u8; IPV6_LEN]| Ip::V6(Aligned(*h)))
        } else {
            skb.read_array(0, |h: &[u8; IPV4_LEN]| Ip::V4(Aligned(*h)))
        }
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

    /// Length of the packet carrying a segment with options `o` in this family.
    pub(crate) fn reply_len(&self, o: &Options) -> usize {
        self.header_len() + HDR_LEN + o.size()
    }

    /// Writes into `b` ([`Ip::reply_len`] bytes, zero) the packet carrying segment `h` with
    /// options `o` from this packet's source to its destination, or back (`reverse`), as C
    /// builds it: IPv4 header checksum left to `ip_local_out`, TCP checksum to the device
    /// (`CHECKSUM_PARTIAL`). `None` if `b` has not that length.
    pub(crate) fn build(
        &self,
        b: &mut impl Buffer,
        net: &Net,
        reverse: bool,
        h: &Header,
        o: &Options,
    ) -> Option<()> {
        let tcp_len = HDR_LEN + o.size();
        let (src, dst) = self.ends(reverse);
        let bytes = b.bytes_mut();
        if bytes.len() != self.header_len() + tcp_len {
            return None;
        }
        let (iph, seg) = bytes.split_at_mut(self.header_len());
        if tcp::build(h, o, seg) != tcp_len {
            return None;
        }
        tcp::put(
            seg,
            16,
            wire::tcp_partial_checksum(src, dst, tcp_len).to_be_bytes(),
        );
        self.write_header(net, iph, src, dst, tcp_len)?;
        b.set_headers(self.header_len(), true);
        Some(())
    }

    /// [`Ip::build`] into a new packet.
    pub(crate) fn reply(
        &self,
        net: &Net,
        reverse: bool,
        h: &Header,
        o: &Options,
    ) -> Option<NewSkb> {
        let mut skb = NewSkb::alloc(self.reply_len(o))?;
        self.build(&mut skb, net, reverse, h, o)?;
        Some(skb)
    }

    /// A packet as it arrives from this packet's source (or back, `reverse`) carrying TCP
    /// segment `seg` (checksum zero): both checksums complete (KUnit).
    #[cfg(rsynproxy_kunit)]
    pub(crate) fn packet(&self, net: &Net, reverse: bool, seg: &[u8]) -> Option<NewSkb> {
        let (src, dst) = self.ends(reverse);
        let mut skb = NewSkb::alloc(self.header_len() + seg.len())?;
        let (iph, tcp) = skb.bytes_mut().split_at_mut(self.header_len());
        self.write_header(net, iph, src, dst, seg.len())?;
        if let Ok(h) = iph.try_into() {
            wire::set_ipv4_checksum(h);
        }
        tcp.copy_from_slice(seg);
        wire::set_tcp_checksum(src, dst, tcp);
        skb.set_headers(self.header_len(), false);
        Some(skb)
    }

    /// Length of this family's IP header as the proxy writes it.
    fn header_len(&self) -> usize {
        match self {
            Ip::V4(_) => IPV4_LEN,
            Ip::V6(_) => IPV6_LEN,
        }
    }

    /// This packet's source and destination addresses, or the other way round (`reverse`).
    fn ends(&self, reverse: bool) -> (&[u8], &[u8]) {
        if reverse {
            (self.daddr(), self.saddr())
        } else {
            (self.saddr(), self.daddr())
        }
    }

    /// Writes into `iph` (exactly [`Ip::header_len`] bytes) the IP header of a TCP segment of
    /// `tcp_len` bytes from `src` to `dst`, checksum zero; `None` if a length does not fit.
    fn write_header(
        &self,
        net: &Net,
        iph: &mut [u8],
        src: &[u8],
        dst: &[u8],
        tcp_len: usize,
    ) -> Option<()> {
        match self {
            Ip::V4(_) => wire::write_ipv4_header(
                iph.try_into().ok()?,
                src.try_into().ok()?,
                dst.try_into().ok()?,
                net.ip4_ttl(),
                tcp_len,
            ),
            Ip::V6(_) => wire::write_ipv6_header(
                iph.try_into().ok()?,
                src.try_into().ok()?,
                dst.try_into().ok()?,
                net.ip6_hop_limit(),
                tcp_len,
            ),
        }
        Some(())
    }

    /// Sends what [`Ip::reply`] builds, routed like `orig`, with the conntrack state `ct`.
    pub(crate) fn send(
        &self,
        net: &Net,
        orig: &Skb,
        reverse: bool,
        h: &Header,
        o: &Options,
        ct: Track<'_>,
    ) {
        let Some(skb) = self.reply(net, reverse, h, o) else {
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
