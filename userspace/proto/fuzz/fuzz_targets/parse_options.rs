//! `cargo fuzz run parse_options` (nightly): the option walkers on arbitrary option areas.
//!
//! Checks, beyond "no panic": what `parse` reads, `write` lays out and `parse` reads back
//! unchanged; `adjust_timestamps` rewrites only timestamp words, once per timestamp option,
//! and undoing the offset restores the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rsynproxy_proto::info::OPT_TIMESTAMP;
use rsynproxy_proto::tcp::{adjust_timestamps, Dir, Options};

fuzz_target!(|data: &[u8]| {
    // The first four bytes, when there are, choose the offset; the rest is the area. The
    // whole input is parsed too, so short inputs still exercise the parser.
    let (tsoff, area) = match data {
        [a, b, c, d, rest @ ..] => (u32::from_be_bytes([*a, *b, *c, *d]), rest),
        _ => (1, data),
    };

    for input in [data, area] {
        let o = Options::parse(input);
        let mut out = [0u8; 20];
        let n = o.write(&mut out);
        assert_eq!(n, o.size());
        assert_eq!(Options::parse(&out[..n]), o);
    }

    for dir in [Dir::Reply, Dir::Original] {
        let mut a = area.to_vec();
        let mut calls = 0;
        adjust_timestamps(&mut a, dir, tsoff, |old, new| {
            assert_eq!(
                new,
                match dir {
                    Dir::Reply => old.wrapping_sub(tsoff),
                    Dir::Original => old.wrapping_add(tsoff),
                }
            );
            calls += 1;
        });
        assert_eq!(a.len(), area.len());
        // The same walk as parse: a timestamp it does not see (after EOL or a bad option)
        // is not rewritten either.
        let parsed = Options::parse(area);
        let has_ts = parsed.options & OPT_TIMESTAMP != 0;
        assert_eq!(calls > 0, tsoff != 0 && has_ts);
        // Same options before and after, the timestamp moved.
        let after = Options::parse(&a);
        let want = match dir {
            Dir::Reply => Options {
                tsval: parsed.tsval.wrapping_sub(tsoff),
                ..parsed
            },
            Dir::Original => Options {
                tsecr: parsed.tsecr.wrapping_add(tsoff),
                ..parsed
            },
        };
        assert_eq!(after, if has_ts { want } else { parsed });
        // Undo.
        adjust_timestamps(&mut a, dir, tsoff.wrapping_neg(), |_, _| {});
        assert_eq!(a, area);
    }
});
