//! The timestamp translation on arbitrary option areas (tests/fuzz-proto runs it).
//!
//! Input: byte 0 selects the direction (bit 0: reply) and the addresses (bit 1: IPv6),
//! bytes 1..5 the offset (big-endian), the rest is the option area (any length).
//!
//! Checks: the length never changes; the bytes that change lie in the one field of a
//! timestamp option the direction rewrites (TSval for a reply, TSecr otherwise), the options
//! being those the C loop of `synproxy_tstamp_adjust` finds; `changed` is called once per such
//! option, in order, with the field's offset, old and new contents, `new = old ∓ tsoff`; at most four
//! calls on a 40-byte area (engine.rs keeps four); the negated offset in the same direction
//! restores the input; a peer echoing the translated TSval in its TSecr (the opposite
//! direction) gets the original value back; the checksum updated from the `changed` pairs
//! (RFC 1624, as `inet_proto_csum_replace4` does) through `tcp::csum_word`, as engine.rs
//! does, equals a full recomputation, at even and odd offsets alike (C bug 6: the plain
//! values nf_synproxy_core.c passes leave a bad checksum at an odd offset).

#![no_main]

mod common;

use common::{c_timestamps, check_field, csum_replace4, ones_sum, Input};
use libfuzzer_sys::fuzz_target;
use rsynproxy_proto::adjust_timestamps;
use rsynproxy_proto::tcp::{self, Dir, HDR_LEN, MAX_OPT_LEN};
use rsynproxy_proto::wire;

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Swaps TSval and TSecr of the options at `at`: what a peer echoes.
fn echo(area: &mut [u8], at: &[usize]) {
    for &o in at {
        let (v, e) = (word(area, o + 2), word(area, o + 6));
        area[o + 2..o + 6].copy_from_slice(&e.to_be_bytes());
        area[o + 6..o + 10].copy_from_slice(&v.to_be_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let sel = input.u8();
    let tsoff = input.u32();
    let area = input.rest();
    let (dir, back, field) = if sel & 1 != 0 {
        (Dir::Reply, Dir::Original, 2)
    } else {
        (Dir::Original, Dir::Reply, 6)
    };
    let ts = c_timestamps(area);

    let mut a = area.to_vec();
    let mut calls = Vec::new();
    adjust_timestamps(&mut a, dir, tsoff, |at, old, new| {
        calls.push((at, old, new))
    });
    assert_eq!(a.len(), area.len());
    if tsoff == 0 {
        assert!(calls.is_empty());
        assert_eq!(a, area);
        return;
    }
    assert_eq!(calls.len(), ts.len(), "timestamps at {ts:?}");
    if area.len() <= MAX_OPT_LEN {
        assert!(calls.len() <= 4);
    }
    let mut expect = area.to_vec();
    for (&(at_cb, old, new), &o) in calls.iter().zip(&ts) {
        let at = o + field;
        assert_eq!(at_cb, at, "the offset the callback is given");
        assert_eq!(old, word(area, at));
        assert_eq!(new, word(&a, at));
        let want = match dir {
            Dir::Reply => old.wrapping_sub(tsoff),
            Dir::Original => old.wrapping_add(tsoff),
        };
        assert_eq!(new, want);
        expect[at..at + 4].copy_from_slice(&want.to_be_bytes());
    }
    // Nothing else changed (the kinds and lengths that the walk reads included).
    assert_eq!(a, expect);

    // Undone by the negated offset.
    let mut undo = a.clone();
    adjust_timestamps(&mut undo, dir, tsoff.wrapping_neg(), |_, _, _| {});
    assert_eq!(undo, area);

    // Echoed by the peer and translated on the way back: the original value again.
    let mut echoed = a.clone();
    echo(&mut echoed, &ts);
    adjust_timestamps(&mut echoed, back, tsoff, |_, _, _| {});
    echo(&mut echoed, &ts);
    assert_eq!(echoed, area);

    // The checksum, kept up to date from the `changed` pairs, inside a segment.
    let (v4, v6) = ([192, 0, 2, 1, 198, 51, 100, 7], [0x20u8; 32]);
    let addrs: &[u8] = if sel & 2 != 0 { &v6 } else { &v4 };
    let (s, d) = addrs.split_at(addrs.len() / 2);
    let mut seg = vec![0u8; HDR_LEN];
    seg[12] = 0xf0;
    seg[13] = 0x10;
    seg.extend_from_slice(area);
    wire::set_tcp_checksum(s, d, &mut seg);
    assert_eq!(ones_sum(s, d, &seg), 0xffff);
    let mut check = check_field(&seg);
    // As engine.rs does: the words as the checksum columns see them (`csum_word`), which at
    // an odd offset differ from the plain values nf_synproxy_core.c passes (C bug 6).
    for &(at, old, new) in &calls {
        check = csum_replace4(check, tcp::csum_word(old, at), tcp::csum_word(new, at));
    }
    seg[HDR_LEN..].copy_from_slice(&a);
    seg[16..18].copy_from_slice(&check.to_be_bytes());
    assert_eq!(
        ones_sum(s, d, &seg),
        0xffff,
        "incremental checksum {check:#06x}"
    );
    let mut full = seg.clone();
    full[16..18].fill(0);
    wire::set_tcp_checksum(s, d, &mut full);
    assert_eq!(check_field(&full), check, "full recomputation");
    assert_eq!(wire::tcp_checksum(s, d, &seg), 0);
});
