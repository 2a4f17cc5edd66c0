// SPDX-License-Identifier: GPL-2.0

//! IP headers of the segments the proxy sends, and the TCP checksum over them (RFC 791,
//! RFC 8200, RFC 1071). The IPv4 header is what `synproxy_build_ip` writes: no options,
//! DF, id 0, TOS 0; IPv6 has flow label 0 and traffic class 0.

/// `IPPROTO_TCP`.
const TCP: u8 = 6;

/// Length of an IPv4 header without options.
pub const IPV4_LEN: usize = 20;
/// Length of the IPv6 header.
pub const IPV6_LEN: usize = 40;

/// An IPv4 header for a TCP segment of `tcp_len` bytes, checksum filled in.
pub fn ipv4_header(saddr: [u8; 4], daddr: [u8; 4], ttl: u8, tcp_len: usize) -> [u8; IPV4_LEN] {
    let mut h = [0u8; IPV4_LEN];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((IPV4_LEN + tcp_len) as u16).to_be_bytes());
    h[6] = 0x40; // DF
    h[8] = ttl;
    h[9] = TCP;
    h[12..16].copy_from_slice(&saddr);
    h[16..20].copy_from_slice(&daddr);
    let check = fold(sum(0, &h));
    h[10..12].copy_from_slice(&check.to_be_bytes());
    h
}

/// An IPv6 header for a TCP segment of `tcp_len` bytes.
pub fn ipv6_header(
    saddr: [u8; 16],
    daddr: [u8; 16],
    hop_limit: u8,
    tcp_len: usize,
) -> [u8; IPV6_LEN] {
    let mut h = [0u8; IPV6_LEN];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
    h[6] = TCP;
    h[7] = hop_limit;
    h[8..24].copy_from_slice(&saddr);
    h[24..40].copy_from_slice(&daddr);
    h
}

/// Ones' complement sum of `data` (big-endian 16-bit words, odd byte padded) onto `acc`.
fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
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
pub fn tcp_checksum(saddr: &[u8], daddr: &[u8], segment: &[u8]) -> u16 {
    let mut acc = sum(0, saddr);
    acc = sum(acc, daddr);
    acc += u64::from(TCP) + segment.len() as u64;
    fold(sum(acc, segment))
}

/// Fills in the checksum field of a TCP segment built with a zero checksum.
pub fn set_tcp_checksum(saddr: &[u8], daddr: &[u8], segment: &mut [u8]) {
    if segment.len() < 18 {
        return;
    }
    let c = tcp_checksum(saddr, daddr, segment);
    segment[16..18].copy_from_slice(&c.to_be_bytes());
}
