//! Property tests: the option walkers against line-by-line transcriptions of the C loops in
//! nf_synproxy_core.c, on arbitrary and on option-shaped byte strings.

use crate::adjust_timestamps;
use crate::c_reference::c_parse;
use crate::info::{OPT_ECN, OPT_MSS, OPT_TIMESTAMP, OPT_WSCALE};
use crate::tcp::{self, Control, Dir, Header, Options, HDR_LEN};
use crate::wire;
use proptest::collection::vec;
use proptest::prelude::*;
use std::ops::Range;
use std::vec::Vec;

/// `synproxy_tstamp_adjust`, transcribed (`optoff`/`optend`). Returns the checksum updates
/// and the byte ranges rewritten.
fn c_adjust(area: &mut [u8], reply: bool, tsoff: u32) -> (Vec<(u32, u32)>, Vec<Range<usize>>) {
    let (mut calls, mut fields) = (Vec::new(), Vec::new());
    if tsoff == 0 {
        return (calls, fields);
    }
    let optend = area.len();
    let mut optoff = 0;
    while optoff < optend {
        let op0 = area[optoff];
        match op0 {
            0 => break,
            1 => optoff += 1,
            _ => {
                if optoff + 1 == optend
                    || optoff + usize::from(area[optoff + 1]) > optend
                    || area[optoff + 1] < 2
                {
                    break;
                }
                if op0 == 8 && area[optoff + 1] == 10 {
                    let at = if reply { optoff + 2 } else { optoff + 6 };
                    let w = &mut area[at..at + 4];
                    let old = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
                    let new = if reply {
                        old.wrapping_sub(tsoff)
                    } else {
                        old.wrapping_add(tsoff)
                    };
                    w.copy_from_slice(&new.to_be_bytes());
                    calls.push((old, new));
                    fields.push(at..at + 4);
                }
                optoff += usize::from(area[optoff + 1]);
            }
        }
    }
    (calls, fields)
}

/// One option, well formed or not, as it could appear in an option area.
fn option() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(std::vec![0]),
        Just(std::vec![1]),
        Just(std::vec![4, 2]),
        any::<u16>().prop_map(|m| [&[2, 4][..], &m.to_be_bytes()].concat()),
        any::<u8>().prop_map(|w| std::vec![3, 3, w]),
        (any::<u32>(), any::<u32>()).prop_map(|(v, e)| [
            &[8, 10][..],
            &v.to_be_bytes(),
            &e.to_be_bytes()
        ]
        .concat()),
        // Any kind and length (also wrong ones), and a body that may not match the length.
        (any::<u8>(), 0..=12u8, vec(any::<u8>(), 0..=10)).prop_map(|(k, l, body)| [
            &[k, l][..],
            &body
        ]
        .concat()),
    ]
}

/// Option areas of 0..=60 bytes: arbitrary bytes, bytes biased to option kinds and lengths,
/// and sequences of options.
fn area() -> impl Strategy<Value = Vec<u8>> {
    let biased = prop_oneof![
        any::<u8>(),
        prop::sample::select(&[0u8, 1, 2, 3, 4, 8, 10][..])
    ];
    prop_oneof![
        vec(any::<u8>(), 0..=60),
        vec(biased, 0..=60),
        vec(option(), 0..=12).prop_map(|o| {
            let mut v = o.concat();
            v.truncate(60);
            v
        }),
    ]
}

/// Options that `write` can lay out and `parse` read back: fields set only with their bit.
fn writable() -> impl Strategy<Value = Options> {
    (0..16u8, 0..=14u8, any::<u16>(), any::<u32>(), any::<u32>()).prop_map(
        |(options, wscale, mss, tsval, tsecr)| {
            let has = |bit: u8| options & bit != 0;
            Options {
                options,
                wscale: if has(OPT_WSCALE) { wscale } else { 0 },
                mss_option: if has(OPT_MSS) { mss } else { 0 },
                mss_encode: 0,
                tsval: if has(OPT_TIMESTAMP) { tsval } else { 0 },
                tsecr: if has(OPT_TIMESTAMP) { tsecr } else { 0 },
            }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn parse_matches_c(area in area()) {
        prop_assert_eq!(Options::parse(&area), c_parse(&area));
    }

    #[test]
    fn adjust_matches_c(
        area in area(),
        reply in any::<bool>(),
        tsoff in prop_oneof![Just(0u32), any::<u32>()],
    ) {
        let dir = if reply { Dir::Reply } else { Dir::Original };
        let mut got = area.clone();
        let mut calls = Vec::new();
        adjust_timestamps(&mut got, dir, tsoff, |_, old, new| calls.push((old, new)));
        let mut want = area.clone();
        let (want_calls, fields) = c_adjust(&mut want, reply, tsoff);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(calls, want_calls);
        prop_assert_eq!(got.len(), area.len());
        for (i, (a, b)) in area.iter().zip(&got).enumerate() {
            if a != b {
                prop_assert!(fields.iter().any(|f| f.contains(&i)), "byte {} changed", i);
            }
        }
        // What was parsed before is parsed after, timestamps moved by tsoff.
        let (before, after) = (Options::parse(&area), Options::parse(&got));
        let moved = match dir {
            Dir::Reply => Options { tsval: before.tsval.wrapping_sub(tsoff), ..before },
            Dir::Original => Options { tsecr: before.tsecr.wrapping_add(tsoff), ..before },
        };
        prop_assert_eq!(after, if before.options & OPT_TIMESTAMP != 0 { moved } else { before });
    }

    #[test]
    fn adjust_reverts(area in area(), tsoff in any::<u32>()) {
        let mut a = area.clone();
        adjust_timestamps(&mut a, Dir::Reply, tsoff, |_, _, _| {});
        adjust_timestamps(&mut a, Dir::Reply, tsoff.wrapping_neg(), |_, _, _| {});
        prop_assert_eq!(a, area);
    }

    #[test]
    fn write_parse_round_trip(o in writable(), ecn in any::<bool>()) {
        let sent = Options { options: o.options | if ecn { OPT_ECN } else { 0 }, ..o };
        let mut out = [0u8; 20];
        let n = sent.write(&mut out);
        prop_assert_eq!(n, sent.size());
        prop_assert_eq!(Options::parse(&out[..n]), o);
    }

    #[test]
    fn build_read_round_trip(
        o in writable(),
        (sport, dport, seq, ack_seq, flags, window) in any::<(u16, u16, u32, u32, u8, u16)>(),
    ) {
        let h = Header { sport, dport, seq, ack_seq, doff: 0, flags, window };
        let mut out = [0u8; tcp::MAX_BUILT_LEN];
        let len = tcp::build(&h, &o, &mut out);
        prop_assert_eq!(len, HDR_LEN + o.size());
        let fixed: &[u8; HDR_LEN] = out[..HDR_LEN].try_into().unwrap();
        let read = Header::read(fixed);
        prop_assert_eq!(read, Header { doff: (len / 4) as u8, ..h });
        prop_assert_eq!(read.options_len(), Some(o.size()));
        prop_assert_eq!(Options::parse(&out[HDR_LEN..len]), o);
    }

    /// The hook decodes established segments' fourth word alone: it must read what the
    /// whole header's reading does.
    #[test]
    fn control_is_the_headers_fourth_word(fixed in any::<[u8; HDR_LEN]>()) {
        let c = Control::read(&fixed);
        prop_assert_eq!(c, Header::read(&fixed).control());
        prop_assert_eq!(c.options_len(), Header::read(&fixed).options_len());
    }

    #[test]
    fn checksum_matches_reference(
        segment in vec(any::<u8>(), 18..=200),
        v6 in any::<bool>(),
        addrs in any::<[u8; 32]>(),
    ) {
        let n = if v6 { 16 } else { 4 };
        let (s, d) = (&addrs[..n], &addrs[16..16 + n]);
        let mut seg = segment;
        seg[16..18].fill(0);
        let want = crate::tests_wire::reference(s, d, &seg);
        prop_assert_eq!(wire::tcp_checksum(s, d, &seg), want);
        wire::set_tcp_checksum(s, d, &mut seg);
        prop_assert_eq!(u16::from_be_bytes([seg[16], seg[17]]), want);
        prop_assert_eq!(crate::tests_wire::reference(s, d, &seg), 0);
    }
}
