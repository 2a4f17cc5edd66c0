//! `tcp`: option parsing (`synproxy_parse_options`), option layout (`synproxy_options_size`,
//! `synproxy_build_options`), header building and timestamp rewriting
//! (`synproxy_tstamp_adjust`).

use crate::adjust_timestamps;
use crate::info::{OPT_ECN, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use crate::tcp::*;
use std::vec;
use std::vec::Vec;

/// The four bits that change the option layout.
const LAYOUT_BITS: [u8; 4] = [OPT_MSS, OPT_WSCALE, OPT_SACK_PERM, OPT_TIMESTAMP];

const TSVAL: u32 = 0x1122_3344;
const TSECR: u32 = 0x5566_7788;

/// Options with only the fields that go with `options` filled in, as `parse` leaves them.
fn opts(options: u8) -> Options {
    Options {
        options,
        wscale: if options & OPT_WSCALE != 0 { 7 } else { 0 },
        mss_option: if options & OPT_MSS != 0 { 1460 } else { 0 },
        mss_encode: 0,
        tsval: if options & OPT_TIMESTAMP != 0 {
            TSVAL
        } else {
            0
        },
        tsecr: if options & OPT_TIMESTAMP != 0 {
            TSECR
        } else {
            0
        },
    }
}

/// A timestamp option (kind 8, length 10).
fn ts(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut v = vec![8, 10];
    v.extend_from_slice(&tsval.to_be_bytes());
    v.extend_from_slice(&tsecr.to_be_bytes());
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// --- Options::parse ----------------------------------------------------------------------

#[test]
fn parse_linux_syn() {
    // What Linux puts in a SYN: MSS, SACK_PERM, TS, NOP, WS.
    let area = cat(&[&[2, 4, 0x05, 0xb4, 4, 2], &ts(TSVAL, TSECR), &[1, 3, 3, 7]]);
    assert_eq!(
        Options::parse(&area),
        Options {
            options: OPT_MSS | OPT_SACK_PERM | OPT_TIMESTAMP | OPT_WSCALE,
            wscale: 7,
            mss_option: 1460,
            mss_encode: 0,
            tsval: TSVAL,
            tsecr: TSECR,
        }
    );
}

#[test]
fn parse_each_option_alone() {
    let mss = Options {
        options: OPT_MSS,
        mss_option: 0xabcd,
        ..Options::default()
    };
    assert_eq!(Options::parse(&[2, 4, 0xab, 0xcd]), mss);
    let ws = Options {
        options: OPT_WSCALE,
        wscale: 9,
        ..Options::default()
    };
    assert_eq!(Options::parse(&[3, 3, 9]), ws);
    let sack = Options {
        options: OPT_SACK_PERM,
        ..Options::default()
    };
    assert_eq!(Options::parse(&[4, 2]), sack);
    let t = Options {
        options: OPT_TIMESTAMP,
        tsval: TSVAL,
        tsecr: TSECR,
        ..Options::default()
    };
    assert_eq!(Options::parse(&ts(TSVAL, TSECR)), t);
}

#[test]
fn parse_ignores_wrong_lengths_but_skips_them() {
    // Each known kind with a length one short and one long, followed by a window scale
    // that is only seen if the bad option was skipped by its own length. The bodies are
    // SACK_PERM look-alikes (4, 2), so reading into them would also show.
    for kind in [2u8, 3, 4, 8] {
        let good = match kind {
            2 => 4,
            3 => 3,
            4 => 2,
            _ => 10,
        };
        for len in [good - 1, good + 1] {
            if len < 2 {
                continue;
            }
            let mut area = vec![kind, len];
            area.extend((2..len).map(|i| if i % 2 == 0 { 4 } else { 2 }));
            area.extend_from_slice(&[3, 3, 5]);
            assert_eq!(
                Options::parse(&area),
                Options {
                    options: OPT_WSCALE,
                    wscale: 5,
                    ..Options::default()
                },
                "kind {kind} len {len}: {area:?}"
            );
        }
    }
}

#[test]
fn parse_clamps_wscale_to_14() {
    for w in 0..=255u8 {
        assert_eq!(Options::parse(&[3, 3, w]).wscale, w.min(14), "wscale {w}");
    }
}

#[test]
fn parse_stops_at_eol() {
    let area = [4, 2, 0, 2, 4, 0x05, 0xb4];
    assert_eq!(Options::parse(&area).options, OPT_SACK_PERM);
    assert_eq!(Options::parse(&[0, 4, 2]), Options::default());
}

#[test]
fn parse_nop_runs() {
    let area = [1, 1, 1, 1, 1, 1, 1, 2, 4, 0x05, 0xb4, 1, 1, 1, 4, 2];
    let o = Options::parse(&area);
    assert_eq!(o.options, OPT_MSS | OPT_SACK_PERM);
    assert_eq!(o.mss_option, 1460);
}

#[test]
fn parse_stops_at_truncated_option() {
    // A kind with no length byte at the very end.
    assert_eq!(Options::parse(&[4, 2, 2]).options, OPT_SACK_PERM);
    // Length running past the end: the partial timestamp is not read.
    let mut area = vec![4, 2];
    area.extend_from_slice(&ts(TSVAL, TSECR)[..9]);
    assert_eq!(Options::parse(&area), Options::parse(&[4, 2]));
    // Past the end by a lot.
    assert_eq!(Options::parse(&[3, 200, 7]), Options::default());
}

#[test]
fn parse_stops_at_length_below_2() {
    for len in [0u8, 1] {
        // Unknown and known kinds alike; a following option is not reached.
        for kind in [2u8, 3, 99] {
            let area = [4, 2, kind, len, 3, 3, 5, 4, 2];
            assert_eq!(
                Options::parse(&area),
                Options {
                    options: OPT_SACK_PERM,
                    ..Options::default()
                },
                "kind {kind} len {len}"
            );
        }
    }
}

#[test]
fn parse_empty_and_all_nops() {
    assert_eq!(Options::parse(&[]), Options::default());
    assert_eq!(Options::parse(&[1; MAX_OPT_LEN]), Options::default());
    // NOPs fill the area up to an option at its very end.
    let mut area = [1u8; MAX_OPT_LEN];
    area[MAX_OPT_LEN - 2..].copy_from_slice(&[4, 2]);
    assert_eq!(Options::parse(&area).options, OPT_SACK_PERM);
}

#[test]
fn parse_duplicates_last_wins() {
    let area = cat(&[
        &[2, 4, 0, 100, 3, 3, 2],
        &ts(1, 2),
        &[2, 4, 0, 200, 3, 3, 99],
        &ts(3, 4),
    ]);
    assert_eq!(
        Options::parse(&area),
        Options {
            options: OPT_MSS | OPT_WSCALE | OPT_TIMESTAMP,
            wscale: 14,
            mss_option: 200,
            mss_encode: 0,
            tsval: 3,
            tsecr: 4,
        }
    );
}

#[test]
fn parse_skips_unknown_options() {
    // TCP-MD5 (19, 18 bytes), SACK blocks (5), a 2-byte unknown 254 and a kind-255 option
    // whose bodies hold MSS look-alikes that must not be read.
    let mut area = vec![19, 18];
    area.extend_from_slice(&[2, 4, 0, 9, 2, 4, 0, 9, 2, 4, 0, 9, 2, 4, 0, 9]);
    area.extend_from_slice(&[5, 10, 2, 4, 0, 9, 2, 4, 0, 9, 254, 2, 255, 3, 2, 4, 2]);
    assert_eq!(area.len(), 35);
    assert_eq!(
        Options::parse(&area),
        Options {
            options: OPT_SACK_PERM,
            ..Options::default()
        }
    );
}

// --- Header ------------------------------------------------------------------------------

#[test]
fn header_read() {
    let b: [u8; HDR_LEN] = [
        0x9c, 0x40, 0x00, 0x50, // ports 40000, 80
        0xde, 0xad, 0xbe, 0xef, // seq
        0x01, 0x02, 0x03, 0x04, // ack_seq
        0xaf, 0x12, // doff 10 with the low (reserved/AE) nibble set, flags SYN|ACK
        0xfa, 0xf0, // window
        0xff, 0xff, 0xff, 0xff, // checksum and urgent pointer: not read
    ];
    assert_eq!(
        Header::read(&b),
        Header {
            sport: 40000,
            dport: 80,
            seq: 0xdead_beef,
            ack_seq: 0x0102_0304,
            doff: 10,
            flags: SYN | ACK,
            window: 0xfaf0,
        }
    );
}

#[test]
fn header_options_len() {
    for doff in 0..=15u8 {
        let h = Header {
            doff,
            ..Header::default()
        };
        let want = if doff < 5 {
            None
        } else {
            Some(usize::from(doff) * 4 - 20)
        };
        assert_eq!(h.options_len(), want, "doff {doff}");
    }
    let full = Header {
        doff: 15,
        ..Header::default()
    };
    assert_eq!(full.options_len(), Some(MAX_OPT_LEN));
}

#[test]
fn header_has() {
    let h = |flags| Header {
        flags,
        ..Header::default()
    };
    assert!(h(SYN).has(SYN, ACK | FIN | RST));
    assert!(!h(SYN | ACK).has(SYN, ACK | FIN | RST));
    assert!(h(SYN | ACK).has(SYN | ACK, 0));
    assert!(!h(SYN).has(SYN | ACK, 0));
    assert!(h(SYN | ECE | CWR).has(ECE | CWR, 0));
    assert!(!h(SYN | ECE).has(ECE | CWR, 0));
    assert!(h(0).has(0, 0));
    assert!(h(0xff).has(0xff, 0));
    assert!(!h(0xff).has(0, FIN));
}

// --- Options::size and write -------------------------------------------------------------

/// Every options byte made of the layout bits, with and without ECN.
fn all_combinations() -> impl Iterator<Item = u8> {
    (0..16u8).flat_map(|m| {
        let bits = LAYOUT_BITS
            .iter()
            .enumerate()
            .filter(|(i, _)| m & (1 << i) != 0)
            .fold(0, |acc, (_, b)| acc | b);
        [bits, bits | OPT_ECN]
    })
}

#[test]
fn size_of_every_combination() {
    for options in all_combinations() {
        let mut want = 0;
        if options & OPT_MSS != 0 {
            want += 4;
        }
        if options & OPT_TIMESTAMP != 0 {
            want += 12; // SACK_PERM rides in the timestamp's padding
        } else if options & OPT_SACK_PERM != 0 {
            want += 4;
        }
        if options & OPT_WSCALE != 0 {
            want += 4;
        }
        assert_eq!(opts(options).size(), want, "options {options:#x}");
    }
}

#[test]
fn write_exact_layouts() {
    let cases: [(u8, &[u8]); 7] = [
        (0, &[]),
        (OPT_MSS, &[2, 4, 0x05, 0xb4]),
        (OPT_WSCALE, &[1, 3, 3, 7]),
        (OPT_SACK_PERM, &[1, 1, 4, 2]),
        (
            OPT_TIMESTAMP,
            &[1, 1, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
        ),
        (
            OPT_MSS | OPT_SACK_PERM | OPT_WSCALE,
            &[2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7],
        ),
        (
            OPT_MSS | OPT_SACK_PERM | OPT_TIMESTAMP | OPT_WSCALE,
            &[
                2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 1,
                3, 3, 7,
            ],
        ),
    ];
    for (options, want) in cases {
        let mut out = [0u8; 20];
        assert_eq!(opts(options).write(&mut out), want.len());
        assert_eq!(&out[..want.len()], want, "options {options:#x}");
    }
}

#[test]
fn write_every_combination() {
    for options in all_combinations() {
        let o = opts(options);
        let mut out = [0xeeu8; 24];
        let n = o.write(&mut out);
        assert_eq!(n, o.size(), "options {options:#x}");
        assert!(out[n..].iter().all(|&b| b == 0xee), "wrote past {n}");
        // ECN is carried in the flags only.
        let mut plain = [0xeeu8; 24];
        opts(options & !OPT_ECN).write(&mut plain);
        assert_eq!(out, plain, "options {options:#x}");
        // Every option is on a 4-byte boundary and parses back.
        assert_eq!(n % 4, 0);
        let mut back = o;
        back.options &= !OPT_ECN;
        assert_eq!(Options::parse(&out[..n]), back, "options {options:#x}");
    }
}

#[test]
fn write_into_short_buffer() {
    for options in all_combinations() {
        let o = opts(options);
        for len in 0..o.size() {
            let mut out = vec![0xeeu8; len];
            assert_eq!(o.write(&mut out), 0, "options {options:#x} len {len}");
            assert!(out.iter().all(|&b| b == 0xee), "touched a short buffer");
        }
    }
}

#[test]
fn write_then_parse_round_trip() {
    for options in all_combinations() {
        for (wscale, mss, tsval, tsecr) in [(0, 1, 0, 0), (14, 65535, u32::MAX, 1), (3, 536, 7, 9)]
        {
            let options = options & !OPT_ECN;
            let o = Options {
                options,
                wscale: if options & OPT_WSCALE != 0 { wscale } else { 0 },
                mss_option: if options & OPT_MSS != 0 { mss } else { 0 },
                mss_encode: 0,
                tsval: if options & OPT_TIMESTAMP != 0 {
                    tsval
                } else {
                    0
                },
                tsecr: if options & OPT_TIMESTAMP != 0 {
                    tsecr
                } else {
                    0
                },
            };
            let mut out = [0u8; 20];
            let n = o.write(&mut out);
            assert_eq!(Options::parse(&out[..n]), o);
        }
    }
}

// --- build -------------------------------------------------------------------------------

const HDR: Header = Header {
    sport: 80,
    dport: 40000,
    seq: 0x0a0b_0c0d,
    ack_seq: 0xfffe_fdfc,
    doff: 0, // ignored: build derives it from the options
    flags: SYN | ACK | ECE,
    window: 0x1234,
};

#[test]
fn build_full_syn_ack() {
    let o = opts(OPT_MSS | OPT_SACK_PERM | OPT_TIMESTAMP | OPT_WSCALE);
    let mut out = [0xeeu8; MAX_BUILT_LEN + 4];
    assert_eq!(build(&HDR, &o, &mut out), 40);
    let want_fixed: [u8; HDR_LEN] = [
        0x00, 0x50, 0x9c, 0x40, // ports
        0x0a, 0x0b, 0x0c, 0x0d, // seq
        0xff, 0xfe, 0xfd, 0xfc, // ack_seq
        0xa0, 0x52, // doff 10, SYN|ACK|ECE
        0x12, 0x34, // window
        0, 0, 0, 0, // checksum, urgent pointer
    ];
    assert_eq!(out[..HDR_LEN], want_fixed);
    let mut want_opts = [0u8; 20];
    o.write(&mut want_opts);
    assert_eq!(out[HDR_LEN..40], want_opts);
    assert!(out[40..].iter().all(|&b| b == 0xee));
    let fixed: &[u8; HDR_LEN] = out[..HDR_LEN].try_into().unwrap();
    assert_eq!(Header::read(fixed), Header { doff: 10, ..HDR });
}

#[test]
fn build_every_combination() {
    for options in all_combinations() {
        let o = opts(options);
        let mut out = [0xeeu8; MAX_BUILT_LEN];
        let len = build(&HDR, &o, &mut out);
        assert_eq!(len, HDR_LEN + o.size(), "options {options:#x}");
        let fixed: &[u8; HDR_LEN] = out[..HDR_LEN].try_into().unwrap();
        let h = Header::read(fixed);
        assert_eq!(usize::from(h.doff) * 4, len);
        assert_eq!(h.options_len(), Some(o.size()));
        assert_eq!(out[12] & 0x0f, 0, "reserved bits");
        assert_eq!(out[16..20], [0; 4]);
        let mut back = o;
        back.options &= !OPT_ECN;
        assert_eq!(Options::parse(&out[HDR_LEN..len]), back);
    }
}

/// The kernel sizes its segment buffers (on the stack) with `MAX_BUILT_LEN`: room for every
/// option set, and no more than the longest TCP header.
#[test]
fn max_built_len_bounds() {
    let longest = all_combinations()
        .map(|options| HDR_LEN + opts(options).size())
        .max()
        .unwrap();
    assert!(longest <= MAX_BUILT_LEN, "{longest} > {MAX_BUILT_LEN}");
    // black_box: a run-time check, so that a wrong constant fails this test (a const assert
    // would make the mutant unbuildable instead of caught).
    let built = std::hint::black_box(MAX_BUILT_LEN);
    assert!(built <= HDR_LEN + MAX_OPT_LEN, "{built}");
}

#[test]
fn build_into_short_buffer() {
    let o = opts(OPT_MSS | OPT_TIMESTAMP);
    let need = HDR_LEN + 16;
    for len in [0, 1, HDR_LEN - 1, HDR_LEN, need - 1] {
        let mut out = vec![0xeeu8; len];
        assert_eq!(build(&HDR, &o, &mut out), 0, "len {len}");
        assert!(out.iter().all(|&b| b == 0xee), "touched a short buffer");
    }
    let mut out = vec![0u8; need];
    assert_eq!(build(&HDR, &o, &mut out), need);
    assert_eq!(
        build(&HDR, &Options::default(), &mut [0u8; HDR_LEN]),
        HDR_LEN
    );
}

// --- adjust_timestamps -------------------------------------------------------------------

/// Runs `adjust_timestamps`, returning the calls to the callback.
fn adjust(area: &mut [u8], dir: Dir, tsoff: u32) -> Vec<(u32, u32)> {
    let mut calls = Vec::new();
    adjust_timestamps(area, dir, tsoff, |_, old, new| calls.push((old, new)));
    calls
}

const NO_CALLS: [(u32, u32); 0] = [];

#[test]
fn adjust_reply_lowers_tsval() {
    let mut area = cat(&[&[1, 1], &ts(1000, 2000)]);
    assert_eq!(adjust(&mut area, Dir::Reply, 300), [(1000, 700)]);
    assert_eq!(area, cat(&[&[1, 1], &ts(700, 2000)]));
    // Wraps below zero.
    let mut area = ts(5, 2000);
    assert_eq!(adjust(&mut area, Dir::Reply, 10), [(5, 0xffff_fffb)]);
    assert_eq!(area, ts(0xffff_fffb, 2000));
}

#[test]
fn adjust_original_raises_tsecr() {
    let mut area = cat(&[&[1, 1], &ts(1000, 2000)]);
    assert_eq!(adjust(&mut area, Dir::Original, 300), [(2000, 2300)]);
    assert_eq!(area, cat(&[&[1, 1], &ts(1000, 2300)]));
    // Wraps past u32::MAX.
    let mut area = ts(1000, 0xffff_fff0);
    assert_eq!(
        adjust(&mut area, Dir::Original, 0x20),
        [(0xffff_fff0, 0x10)]
    );
    assert_eq!(area, ts(1000, 0x10));
}

#[test]
fn adjust_aligned_layout_like_the_walk() {
    // NOP NOP TS first (the module's fast path), then a second timestamp option: the walk
    // goes on after the first and shifts both, as the C loop does.
    let mut area = cat(&[&[1, 1], &ts(1000, 2000), &[1, 1], &ts(50, 60)]);
    assert_eq!(adjust(&mut area, Dir::Reply, 10), [(1000, 990), (50, 40)]);
    assert_eq!(area, cat(&[&[1, 1], &ts(990, 2000), &[1, 1], &ts(40, 60)]));
    // The aligned first word in an area too short for the option (8 bytes, doff 7): a
    // truncated option, left alone.
    let mut area = vec![1, 1, 8, 10, 0, 0, 3, 232];
    let before = area.clone();
    assert_eq!(adjust(&mut area, Dir::Reply, 10), NO_CALLS);
    assert_eq!(area, before);
}

#[test]
fn adjust_zero_offset_does_nothing() {
    let before = cat(&[&[2, 4, 5, 0xb4, 4, 2], &ts(1, 2), &[1, 3, 3, 7]]);
    for dir in [Dir::Reply, Dir::Original] {
        let mut area = before.clone();
        adjust_timestamps(&mut area, dir, 0, |_, _, _| panic!("callback with tsoff 0"));
        assert_eq!(area, before);
    }
}

#[test]
fn adjust_touches_only_the_timestamp() {
    // The Linux SYN layout: the timestamp sits between other options.
    let mut area = cat(&[&[2, 4, 5, 0xb4, 4, 2], &ts(TSVAL, TSECR), &[1, 3, 3, 7]]);
    assert_eq!(adjust(&mut area, Dir::Reply, 0x44), [(TSVAL, 0x1122_3300)]);
    assert_eq!(
        area,
        cat(&[
            &[2, 4, 5, 0xb4, 4, 2],
            &ts(0x1122_3300, TSECR),
            &[1, 3, 3, 7]
        ])
    );
}

#[test]
fn adjust_both_of_two_timestamps() {
    let mut area = cat(&[&ts(10, 20), &[1, 1], &ts(30, 40)]);
    assert_eq!(adjust(&mut area, Dir::Original, 1), [(20, 21), (40, 41)]);
    assert_eq!(area, cat(&[&ts(10, 21), &[1, 1], &ts(30, 41)]));
}

#[test]
fn adjust_every_timestamp_of_a_long_slice() {
    // Six timestamp options: more than a 40-byte area holds, all rewritten as the C loop
    // would (the slice is not limited to MAX_OPT_LEN).
    let mut area: Vec<u8> = (0..6).flat_map(|i| ts(i, 100 + i)).collect();
    let calls = adjust(&mut area, Dir::Reply, 1);
    assert_eq!(calls.len(), 6);
    let want: Vec<u8> = (0..6u32)
        .flat_map(|i| ts(i.wrapping_sub(1), 100 + i))
        .collect();
    assert_eq!(area, want);
}

#[test]
fn adjust_leaves_malformed_areas_alone() {
    let cases: [Vec<u8>; 8] = [
        vec![],
        vec![8],
        ts(1, 2)[..9].to_vec(),                 // truncated
        cat(&[&[8, 9], &ts(1, 2)[2..]]),        // wrong length
        cat(&[&[8, 11], &ts(1, 2)[2..], &[0]]), // wrong length
        cat(&[&[0], &ts(1, 2)]),                // after EOL
        cat(&[&[99, 1], &ts(1, 2)]),            // after a length below 2
        cat(&[&[99, 0], &ts(1, 2)]),            // after a zero length
    ];
    for before in cases {
        for dir in [Dir::Reply, Dir::Original] {
            let mut area = before.clone();
            assert_eq!(adjust(&mut area, dir, 12345), NO_CALLS, "{before:?}");
            assert_eq!(area, before);
        }
    }
    // A bogus option's body that looks like a timestamp is skipped, not rewritten.
    let before = cat(&[&[30, 12], &ts(1, 2)]);
    let mut area = before.clone();
    assert_eq!(adjust(&mut area, Dir::Reply, 1), NO_CALLS);
    assert_eq!(area, before);
}

/// RFC 1624 eqn. 3, as `inet_proto_csum_replace4` applies it to a checksum field.
fn csum_replace4(check: u16, old: u32, new: u32) -> u16 {
    let mut sum = u32::from(!check);
    for w in [!(old >> 16), !old & 0xffff, new >> 16, new & 0xffff] {
        sum += w & 0xffff;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A segment (ACK, doff from the area) with `area` as its options and a valid checksum.
fn segment(area: &[u8]) -> Vec<u8> {
    let mut seg = vec![0u8; HDR_LEN];
    seg[12] = (((HDR_LEN + area.len()) / 4) as u8) << 4;
    seg[13] = 0x10;
    seg.extend_from_slice(area);
    crate::wire::set_tcp_checksum(&SRC4, &DST4, &mut seg);
    seg
}

const SRC4: [u8; 4] = [192, 0, 2, 1];
const DST4: [u8; 4] = [198, 51, 100, 7];

/// The checksum after `adjust_timestamps`, updated incrementally from the callback's words,
/// through `csum_word` (`columns`) or with the plain values (as nf_synproxy_core.c does).
fn adjusted_checksum_ok(area: &[u8], dir: Dir, columns: bool) -> bool {
    let mut seg = segment(area);
    let mut check = u16::from_be_bytes([seg[16], seg[17]]);
    adjust_timestamps(&mut seg[HDR_LEN..], dir, 0x0102_0304, |at, old, new| {
        check = if columns {
            csum_replace4(check, csum_word(old, at), csum_word(new, at))
        } else {
            csum_replace4(check, old, new)
        };
    });
    seg[16..18].copy_from_slice(&check.to_be_bytes());
    crate::wire::tcp_checksum(&SRC4, &DST4, &seg) == 0
}

#[test]
fn adjust_reports_the_word_offset() {
    let mut area = cat(&[&[1], &ts(TSVAL, TSECR), &[1, 1, 1]]);
    let mut at = Vec::new();
    adjust_timestamps(&mut area, Dir::Reply, 1, |a, _, _| at.push(a));
    adjust_timestamps(&mut area, Dir::Original, 1, |a, _, _| at.push(a));
    assert_eq!(at, [3, 7]);
}

#[test]
fn checksum_update_at_odd_and_even_offsets() {
    // C bug 6: a timestamp option after one NOP puts TSval and TSecr at odd offsets; the
    // plain values give a wrong checksum there, the column view a right one everywhere.
    let odd = cat(&[&[1], &ts(0x8000_0000, 0x7fff_ffff), &[1, 1, 1]]);
    let even = cat(&[&[1, 1], &ts(0x8000_0000, 0x7fff_ffff)]);
    for dir in [Dir::Reply, Dir::Original] {
        assert!(adjusted_checksum_ok(&odd, dir, true));
        assert!(adjusted_checksum_ok(&even, dir, true));
        assert!(adjusted_checksum_ok(&even, dir, false));
        assert!(
            !adjusted_checksum_ok(&odd, dir, false),
            "the C way is right here?"
        );
    }
}

#[test]
fn csum_word_swaps_only_at_odd_offsets() {
    assert_eq!(csum_word(0x1122_3344, 0), 0x1122_3344);
    assert_eq!(csum_word(0x1122_3344, 6), 0x1122_3344);
    assert_eq!(csum_word(0x1122_3344, 3), 0x2211_4433);
}

#[test]
fn put_writes_only_what_fits() {
    let mut b = [0u8; 4];
    crate::tcp::put(&mut b, 2, [1, 2]);
    assert_eq!(b, [0, 0, 1, 2]);
    crate::tcp::put(&mut b, 3, [7, 7]);
    assert_eq!(b, [0, 0, 1, 2]);
    crate::tcp::put(&mut b, usize::MAX, [7]);
    assert_eq!(b, [0, 0, 1, 2]);
    crate::tcp::put(&mut b, 0, [9; 4]);
    assert_eq!(b, [9; 4]);
}
