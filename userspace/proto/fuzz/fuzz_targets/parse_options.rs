//! The option parser and writer on arbitrary bytes (tests/fuzz-proto runs it).
//!
//! Input: the whole of it is an option area (of any length, also beyond the 40 bytes a
//! header can carry) and so are its first 40 bytes; its first 14 bytes are also read as an
//! `Options` value (options, wscale, mss_option, mss_encode, tsval, tsecr; big-endian).
//!
//! Checks: `parse` agrees with a transcription of the C loop; `write` lays out `size()`
//! bytes, a multiple of 4 and at most 20, touches nothing past them, refuses a short buffer
//! untouched; `parse(write(o))` gives back the fields `write` emits; `build` writes a header
//! whose doff covers exactly the options.

#![no_main]

mod common;

use common::{c_parse, written, Input};
use libfuzzer_sys::fuzz_target;
use rsynproxy_proto::tcp::{self, Header, Options, HDR_LEN, MAX_BUILT_LEN, MAX_OPT_LEN};

fn check_write(o: &Options) {
    let size = o.size();
    assert!(
        size.is_multiple_of(4) && size <= 20 && size <= MAX_OPT_LEN,
        "size {size} of {o:?}"
    );
    // Into a longer buffer: exactly `size` bytes written.
    let mut out = [0xa5u8; MAX_OPT_LEN + 4];
    let n = o.write(&mut out);
    assert_eq!(n, size, "{o:?}");
    assert!(out[n..].iter().all(|&b| b == 0xa5), "wrote past {n}: {o:?}");
    // Only whole options, no EOL: every byte is read back by the parser's walk.
    assert_eq!(Options::parse(&out[..n]), written(o), "{:02x?}", &out[..n]);
    assert_eq!(c_parse(&out[..n]), written(o));
    // Into a buffer one byte short: nothing.
    if size > 0 {
        let mut short = [0x5au8; 19];
        assert_eq!(o.write(&mut short[..size - 1]), 0);
        assert!(short.iter().all(|&b| b == 0x5a));
    }
    // After a header.
    let h = Header {
        sport: 1,
        dport: 2,
        seq: 3,
        ack_seq: 4,
        doff: 0,
        flags: tcp::SYN,
        window: 5,
    };
    let mut seg = [0u8; MAX_BUILT_LEN];
    let len = tcp::build(&h, o, &mut seg);
    assert_eq!(len, HDR_LEN + size);
    let read = Header::read(seg[..HDR_LEN].try_into().unwrap());
    assert_eq!(
        read,
        Header {
            doff: (len / 4) as u8,
            ..h
        }
    );
    assert_eq!(read.options_len(), Some(size));
    assert_eq!(&seg[HDR_LEN..len], &out[..n]);
    assert_eq!(tcp::build(&h, o, &mut seg[..len - 1]), 0);
}

fuzz_target!(|data: &[u8]| {
    for area in [data, &data[..data.len().min(MAX_OPT_LEN)]] {
        let o = Options::parse(area);
        assert_eq!(o, c_parse(area), "area {area:02x?}");
        // What parse gives, write can lay out and parse reads back whole.
        assert_eq!(written(&o), o);
        assert!(o.wscale <= 14);
        check_write(&o);
    }

    // Any value, also ones parse never gives (wscale > 14, ECN, unknown bits, fields without
    // their bit): write is total on them too.
    let mut input = Input(data);
    let o = input.options();
    check_write(&o);
});
