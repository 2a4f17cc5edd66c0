// SPDX-License-Identifier: GPL-2.0

//! IP headers of the segments the proxy sends, and the TCP checksum over them (RFC 791,
//! RFC 8200, RFC 1071). The IPv4 header is what `synproxy_build_ip` writes: no options,
//! DF, id 0, TOS 0; IPv6 has flow label 0 and traffic class 0. The module writes the
//! headers in place and leaves both checksums to the stack, as C does; the complete ones
//! (cfg-gated out of the production module) build packets as they arrive, for the tests.

use super::tcp::put;

/// `IPPROTO_TCP`.
const TCP: u8 = 6;

/// Length of an IPv4 header without options.
pub const IPV4_LEN: usize = 20;
/// Length of the IPv6 header.
pub const IPV6_LEN: usize = 40;

/// Writes an IPv4 header for a TCP segment of `tcp_len` bytes into `h`, checksum zero: the
/// stack fills it in when it sends the packet (`__ip_local_out`), as for C's packets.
pub fn write_ipv4_header(
    h: &mut [u8; IPV4_LEN],
    saddr: &[u8; 4],
    daddr: &[u8; 4],
    ttl: u8,
    tcp_len: usize,
) {
    let len = ((IPV4_LEN + tcp_len) as u16).to_be_bytes();
    // Version 4, IHL 5, TOS 0, length; id 0, DF; TTL, TCP, checksum 0.
    put(
        h,
        0,
        [0x45, 0, len[0], len[1], 0, 0, 0x40, 0, ttl, TCP, 0, 0],
    );
    put(h, 12, *saddr);
    put(h, 16, *daddr);
}

/// An IPv4 header for a TCP segment of `tcp_len` bytes, checksum filled in (a packet as it
/// arrives: tests, the probe tool).
#[cfg(any(not(MODULE), rsynproxy_kunit))]
pub fn ipv4_header(saddr: [u8; 4], daddr: [u8; 4], ttl: u8, tcp_len: usize) -> [u8; IPV4_LEN] {
    let mut h = [0u8; IPV4_LEN];
    write_ipv4_header(&mut h, &saddr, &daddr, ttl, tcp_len);
    set_ipv4_checksum(&mut h);
    h
}

/// Fills in the checksum of IPv4 header `h` written with a zero checksum.
#[cfg(any(not(MODULE), rsynproxy_kunit))]
pub fn set_ipv4_checksum(h: &mut [u8; IPV4_LEN]) {
    let check = fold(sum(0, &h[..]));
    put(h, 10, check.to_be_bytes());
}

/// Writes an IPv6 header for a TCP segment of `tcp_len` bytes into `h`.
pub fn write_ipv6_header(
    h: &mut [u8; IPV6_LEN],
    saddr: &[u8; 16],
    daddr: &[u8; 16],
    hop_limit: u8,
    tcp_len: usize,
) {
    let len = (tcp_len as u16).to_be_bytes();
    // Version 6, traffic class 0, flow label 0; payload length, TCP, hop limit.
    put(h, 0, [0x60, 0, 0, 0, len[0], len[1], TCP, hop_limit]);
    put(h, 8, *saddr);
    put(h, 24, *daddr);
}

/// An IPv6 header for a TCP segment of `tcp_len` bytes.
#[cfg(any(not(MODULE), rsynproxy_kunit))]
pub fn ipv6_header(
    saddr: [u8; 16],
    daddr: [u8; 16],
    hop_limit: u8,
    tcp_len: usize,
) -> [u8; IPV6_LEN] {
    let mut h = [0u8; IPV6_LEN];
    write_ipv6_header(&mut h, &saddr, &daddr, hop_limit, tcp_len);
    h
}

/// Ones' complement sum of `data` (big-endian 16-bit words, odd byte padded) onto `acc`.
/// Added a 32-bit word at a time, which [`fold`] brings to the same 16-bit sum (the carries
/// wrap round either way): half the steps of 16-bit words (an IPv6 pseudo-header's
/// addresses cost 150 instructions a packet that way).
fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    match words.remainder() {
        [a, b, c] => acc + (u64::from(u16::from_be_bytes([*a, *b])) + (u64::from(*c) << 8)),
        [a, b] => acc + u64::from(u16::from_be_bytes([*a, *b])),
        [a] => acc + (u64::from(*a) << 8),
        _ => acc,
    }
}

/// Folds a sum into the 16-bit checksum field value.
fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The TCP checksum of `segment` (whose checksum field must be zero) over the pseudo-header
/// of `saddr`/`daddr` (4 or 16 bytes each).
#[cfg(any(not(MODULE), rsynproxy_kunit))]
pub fn tcp_checksum(saddr: &[u8], daddr: &[u8], segment: &[u8]) -> u16 {
    let mut acc = sum(0, saddr);
    acc = sum(acc, daddr);
    acc += u64::from(TCP) + segment.len() as u64;
    fold(sum(acc, segment))
}

/// Fills in the checksum field of a TCP segment built with a zero checksum.
#[cfg(any(not(MODULE), rsynproxy_kunit))]
pub fn set_tcp_checksum(saddr: &[u8], daddr: &[u8], segment: &mut [u8]) {
    if segment.len() < 18 {
        return;
    }
    let c = tcp_checksum(saddr, daddr, segment);
    segment[16..18].copy_from_slice(&c.to_be_bytes());
}

/// The checksum field of a TCP segment of `len` bytes sent with `CHECKSUM_PARTIAL`: the
/// pseudo-header's sum, folded and not inverted (`~tcp_v4_check(len, saddr, daddr, 0)`);
/// the device (or `skb_checksum_help`) adds the segment's own sum and inverts.
pub fn tcp_partial_checksum(saddr: &[u8], daddr: &[u8], len: usize) -> u16 {
    let mut acc = sum(0, saddr);
    acc = sum(acc, daddr);
    acc += u64::from(TCP) + len as u64;
    !fold(acc)
}
