//! `wire`: IP headers as `synproxy_build_ip` writes them, and the TCP checksum.
//!
//! The expected checksums were computed outside this crate (Python's `struct` over the same
//! bytes); `reference` below is a second, independent RFC 1071 implementation.

use crate::info::{OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use crate::tcp::{self, Header, Options, SYN};
use crate::wire::*;
use std::vec::Vec;

const SRC4: [u8; 4] = [192, 0, 2, 1];
const DST4: [u8; 4] = [198, 51, 100, 7];
/// 2001:db8::1 and 2001:db8::ff.
const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
];

/// RFC 1071 over a byte string: 16-bit big-endian words, odd byte padded with zero,
/// end-around carry at each step.
fn ones_sum(bytes: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for pair in bytes.chunks(2) {
        let w = u32::from(pair[0]) << 8 | u32::from(pair.get(1).copied().unwrap_or(0));
        s += w;
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The TCP checksum from the RFC 793/8200 pseudo-header, built out as bytes.
pub(crate) fn reference(saddr: &[u8], daddr: &[u8], segment: &[u8]) -> u16 {
    let mut all: Vec<u8> = Vec::new();
    all.extend_from_slice(saddr);
    all.extend_from_slice(daddr);
    if saddr.len() == 4 {
        all.extend_from_slice(&[0, 6]);
        all.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    } else {
        all.extend_from_slice(&(segment.len() as u32).to_be_bytes());
        all.extend_from_slice(&[0, 0, 0, 6]);
    }
    all.extend_from_slice(segment);
    !ones_sum(&all)
}

/// The client SYN Linux sends: MSS 1460, SACK_PERM, TS, WS 7 (40 bytes, checksum zero).
fn syn() -> Vec<u8> {
    let h = Header {
        sport: 40000,
        dport: 80,
        seq: 1,
        ack_seq: 0,
        doff: 0,
        flags: SYN,
        window: 64240,
    };
    let o = Options {
        options: OPT_MSS | OPT_SACK_PERM | OPT_TIMESTAMP | OPT_WSCALE,
        wscale: 7,
        mss_option: 1460,
        mss_encode: 0,
        tsval: 0x1122_3344,
        tsecr: 0,
    };
    let mut out = [0u8; tcp::MAX_BUILT_LEN];
    let n = tcp::build(&h, &o, &mut out);
    assert_eq!(n, 40);
    out[..n].to_vec()
}

#[test]
fn ipv4_header_fields() {
    let h = ipv4_header(SRC4, DST4, 64, 40);
    assert_eq!(
        h,
        [
            0x45, 0x00, 0x00, 0x3c, // version 4, ihl 5, tos 0, total length 60
            0x00, 0x00, 0x40, 0x00, // id 0, DF
            0x40, 0x06, 0x4e, 0x80, // ttl 64, TCP, checksum
            192, 0, 2, 1, 198, 51, 100, 7,
        ]
    );
    // A header with its checksum sums to all ones.
    assert_eq!(ones_sum(&h), 0xffff);
}

#[test]
fn ipv4_header_checksum_known() {
    // The classic RFC 1071 example header (Wikipedia's 0xb861 for UDP), as TCP:
    // 0x11 - 0x06 less in the sum, 0x0b more in the checksum.
    let h = ipv4_header([192, 168, 0, 1], [192, 168, 0, 199], 64, 0x73 - 20);
    assert_eq!(h[10..12], [0xb8, 0x6c]);
}

#[test]
fn ipv4_header_checksum_verifies() {
    for (ttl, len) in [(0, 0), (1, 20), (64, 44), (255, 1480), (128, 65515)] {
        for (s, d) in [(SRC4, DST4), ([0; 4], [0; 4]), ([255; 4], [255; 4])] {
            let h = ipv4_header(s, d, ttl, len);
            assert_eq!(ones_sum(&h), 0xffff, "ttl {ttl} len {len} {s:?}");
            let mut zeroed = h;
            zeroed[10..12].fill(0);
            assert_eq!(h[10..12], (!ones_sum(&zeroed)).to_be_bytes());
        }
    }
}

#[test]
fn ipv6_header_fields() {
    let h = ipv6_header(SRC6, DST6, 64, 40);
    let mut want = [0u8; IPV6_LEN];
    // version 6, traffic class 0, flow label 0, payload 40, next header TCP, hop limit 64
    want[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 40, 6, 64]);
    want[8..24].copy_from_slice(&SRC6);
    want[24..].copy_from_slice(&DST6);
    assert_eq!(h, want);
    assert_eq!(
        ipv6_header(SRC6, DST6, 255, 0x1234)[4..8],
        [0x12, 0x34, 6, 255]
    );
}

#[test]
fn tcp_checksum_ipv4_syn() {
    let seg = syn();
    assert_eq!(tcp_checksum(&SRC4, &DST4, &seg), 0x7fdb);
    assert_eq!(reference(&SRC4, &DST4, &seg), 0x7fdb);
}

#[test]
fn tcp_checksum_ipv6_syn() {
    let seg = syn();
    assert_eq!(tcp_checksum(&SRC6, &DST6, &seg), 0x0fa6);
    assert_eq!(reference(&SRC6, &DST6, &seg), 0x0fa6);
}

#[test]
fn tcp_checksum_odd_length() {
    let mut seg = syn();
    seg.push(0x5a);
    assert_eq!(tcp_checksum(&SRC4, &DST4, &seg), 0x25da);
    // The pad byte is zero: appending a zero byte changes only the length word.
    for n in [21, 41, 1001] {
        let seg: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
        for (s, d) in [(&SRC4[..], &DST4[..]), (&SRC6[..], &DST6[..])] {
            assert_eq!(tcp_checksum(s, d, &seg), reference(s, d, &seg), "len {n}");
        }
    }
}

#[test]
fn tcp_checksum_matches_reference() {
    // Lengths around word boundaries, carries (all 0xff), and an IPv6 jumbo segment whose
    // length does not fit 16 bits.
    for n in [0usize, 1, 2, 3, 20, 59, 60, 1500, 65535, 70001] {
        for fill in [0x00u8, 0xff, 0x5a] {
            let seg: Vec<u8> = (0..n).map(|i| fill ^ (i as u8)).collect();
            assert_eq!(
                tcp_checksum(&SRC6, &DST6, &seg),
                reference(&SRC6, &DST6, &seg),
                "IPv6 len {n} fill {fill:#x}"
            );
            if n <= 65515 {
                assert_eq!(
                    tcp_checksum(&SRC4, &DST4, &seg),
                    reference(&SRC4, &DST4, &seg),
                    "IPv4 len {n} fill {fill:#x}"
                );
            }
        }
    }
}

/// Whether a segment's checksum verifies: with the field filled in, the pseudo-header and
/// segment sum to all ones, so the checksum over them is 0.
fn verifies(saddr: &[u8], daddr: &[u8], segment: &[u8]) -> bool {
    reference(saddr, daddr, segment) == 0
}

#[test]
fn set_tcp_checksum_verifies() {
    let mut seg = syn();
    assert!(!verifies(&SRC4, &DST4, &seg));
    set_tcp_checksum(&SRC4, &DST4, &mut seg);
    assert_eq!(seg[16..18], [0x7f, 0xdb]);
    assert!(verifies(&SRC4, &DST4, &seg));

    for extra in [&b""[..], b"x", b"odd", b"even"] {
        let mut seg = syn();
        seg.extend_from_slice(extra);
        set_tcp_checksum(&SRC6, &DST6, &mut seg);
        assert!(verifies(&SRC6, &DST6, &seg), "{extra:?}");
    }
}

#[test]
fn set_tcp_checksum_short_segment() {
    // Too short to hold the checksum field: left alone.
    for n in 0..18 {
        let mut seg: Vec<u8> = (0..n).map(|i| i as u8).collect();
        let before = seg.clone();
        set_tcp_checksum(&SRC4, &DST4, &mut seg);
        assert_eq!(seg, before);
    }
    // 18 bytes is enough.
    let mut seg = [0u8; 18];
    set_tcp_checksum(&SRC4, &DST4, &mut seg);
    assert_eq!(
        u16::from_be_bytes([seg[16], seg[17]]),
        reference(&SRC4, &DST4, &[0; 18])
    );
}

#[test]
fn write_ipv4_header_leaves_the_checksum_to_the_stack() {
    let mut h = [0xeeu8; IPV4_LEN];
    write_ipv4_header(&mut h, &SRC4, &DST4, 64, 40);
    let mut want = ipv4_header(SRC4, DST4, 64, 40);
    want[10..12].fill(0);
    assert_eq!(h, want);
    let mut h6 = [0xeeu8; IPV6_LEN];
    write_ipv6_header(&mut h6, &SRC6, &DST6, 64, 40);
    assert_eq!(h6, ipv6_header(SRC6, DST6, 64, 40));
}

/// What a device does with a CHECKSUM_PARTIAL segment: the sum of the segment from the TCP
/// header on (the field holding the partial value), inverted, into the field.
fn complete(segment: &mut [u8]) {
    let c = !ones_sum(segment);
    segment[16..18].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn tcp_partial_checksum_completes_to_the_full_one() {
    for (s, d) in [
        (&SRC4[..], &DST4[..]),
        (&SRC6[..], &DST6[..]),
        (&[0u8; 4][..], &[0u8; 4][..]),
        (&[0xffu8; 16][..], &[0xffu8; 16][..]),
    ] {
        for extra in [&b""[..], b"x", b"even", &[0xff; 33][..]] {
            let mut seg = syn();
            seg.extend_from_slice(extra);
            let full = tcp_checksum(s, d, &seg);
            let p = tcp_partial_checksum(s, d, seg.len());
            seg[16..18].copy_from_slice(&p.to_be_bytes());
            complete(&mut seg);
            assert_eq!(
                u16::from_be_bytes([seg[16], seg[17]]),
                full,
                "{s:?} {extra:?}"
            );
            assert!(verifies(s, d, &seg));
        }
    }
    // Known value: 192.0.2.1 -> 198.51.100.7, 40 bytes: c000 + 0201 + c633 + 6407 + 6 + 40
    // (computed by hand).
    assert_eq!(tcp_partial_checksum(&SRC4, &DST4, 40), 0xec6a);
}
