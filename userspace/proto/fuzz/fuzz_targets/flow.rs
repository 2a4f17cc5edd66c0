//! A whole proxied handshake from arbitrary packets and rule (tests/fuzz-proto runs it):
//! client SYN → `syn_ack` (timestamp cookie `cookie::encode`) → client ACK → `server_syn`
//! (`cookie::decode`) → backend SYN-ACK → `established` → timestamp translation. Each segment
//! the proxy sends is laid out with `tcp::build` and checksummed with `wire`.
//!
//! Input (big-endian, zeros past the end):
//!
//! | bytes  | field |
//! | ------ | ----- |
//! | 0..20  | the client SYN's fixed header, as on the wire |
//! | 20..24 | rule: options, wscale, mss (2) |
//! | 24..28 | clock (ms) |
//! | 28..32 | the SYN-ACK's sequence number (the syncookie ISN) |
//! | 32..34 | the MSS the syncookie decodes to |
//! | 34     | bit 0: keep-alive ACK, bit 1: the ACK has a timestamp, bit 2: its TSecr is forged, bit 3: IPv6 |
//! | 35..39 | the ACK's TSval |
//! | 39..43 | the ACK's forged TSecr |
//! | 43..47 | the backend's ISN |
//! | 47..49 | the backend's window |
//! | 49..51 | the largest window the client announced |
//! | 51     | n, the length of the client's option area (taken mod 64) |
//! | 52..   | the client's option area (n bytes), then the backend's (the rest) |
//!
//! The backend's option area is also read as an `Options` value (as in parse_options), which
//! every step is given too.
//!
//! Checks: every field of every segment against what the steps promise (ports, sequence
//! numbers, flags, the options the rule and the client agree on, the cookie round trip), every
//! built segment: at most `MAX_BUILT_LEN` bytes, doff covering it, header and options read
//! back, TCP checksum (and IPv4 header checksum) summing to zero; the translation of the
//! client's window update brings its TSval to our cookie clock and the echo back to the
//! backend's, with the checksum kept by RFC 1624 updates from the `changed` pairs. Before
//! that, the backend option mismatch: what the target reads from the ACK as told to the
//! client equals what the SYN-ACK said, its stash round trip, the comparison, and for a
//! window-scale difference the window update's translation (never more than the backend
//! offers) with its checksum update.

#![no_main]

mod common;

use common::{check_field, csum_replace4, ones_sum, sum16, written, Input};
use libfuzzer_sys::fuzz_target;
use rsynproxy_proto::adjust_timestamps;
use rsynproxy_proto::cookie;
use rsynproxy_proto::flow::{
    classify, client_isn, established, rst_offset, seq_offset, server_syn, syn_ack, Reply, Segment,
};
use rsynproxy_proto::info::{
    check_rule, Info, ProtoMatch, IPPROTO_TCP, OPT_ECN, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP,
    OPT_WSCALE,
};
use rsynproxy_proto::mismatch::{with_window, Kind, Mismatch, Scale, Told};
use rsynproxy_proto::tcp::{
    self, Dir, Header, Options, ACK, CWR, ECE, FIN, HDR_LEN, MAX_BUILT_LEN, RST, SYN,
};
use rsynproxy_proto::wire;

struct Addrs<'a> {
    s: &'a [u8],
    d: &'a [u8],
}

/// Lays out `r`, checks it, and returns the segment with its checksum.
fn send(r: &Reply, a: &Addrs) -> ([u8; MAX_BUILT_LEN], usize) {
    let mut out = [0u8; MAX_BUILT_LEN];
    let len = tcp::build(&r.header, &r.options, &mut out);
    assert_eq!(len, HDR_LEN + r.options.size());
    assert!(len <= MAX_BUILT_LEN && len.is_multiple_of(4));
    assert_eq!(
        tcp::build(&r.header, &r.options, &mut [0u8; MAX_BUILT_LEN][..len - 1]),
        0
    );
    let read = Header::read(out[..HDR_LEN].try_into().unwrap());
    assert_eq!(usize::from(read.doff) * 4, len);
    assert_eq!(
        read,
        Header {
            doff: read.doff,
            ..r.header
        }
    );
    assert_eq!(read.options_len(), Some(len - HDR_LEN));
    assert_eq!(Options::parse(&out[HDR_LEN..len]), written(&r.options));
    assert_eq!(out[16..20], [0; 4], "checksum and urgent pointer zero");

    let seg = &mut out[..len];
    let unsummed = ones_sum(a.s, a.d, seg);
    wire::set_tcp_checksum(a.s, a.d, seg);
    assert_eq!(check_field(seg), !unsummed);
    assert_eq!(ones_sum(a.s, a.d, seg), 0xffff);
    assert_eq!(wire::tcp_checksum(a.s, a.d, seg), 0);
    if a.s.len() == 4 {
        let ip = wire::ipv4_header(a.s.try_into().unwrap(), a.d.try_into().unwrap(), 64, len);
        assert_eq!(sum16(&[&ip], 0), 0xffff, "IPv4 header checksum");
        assert_eq!(
            usize::from(u16::from_be_bytes([ip[2], ip[3]])),
            wire::IPV4_LEN + len
        );
        assert_eq!((ip[0], ip[9]), (0x45, 6));
    } else {
        let ip = wire::ipv6_header(a.s.try_into().unwrap(), a.d.try_into().unwrap(), 64, len);
        assert_eq!(usize::from(u16::from_be_bytes([ip[4], ip[5]])), len);
        assert_eq!((ip[0], ip[6]), (0x60, 6));
    }
    (out, len)
}

/// Every step on options no parser produced (window scale above 14, bits of any kind,
/// fields without their bit): no panic, and every segment still laid out within bounds.
fn any_options(info: &Info, h: &Header, mut input: Input, a: &Addrs) {
    let raw = input.options();
    let r = syn_ack(info, h, raw, raw.tsval);
    assert_eq!(r.options.options & !info.options, 0);
    send(&r, a);
    send(&server_syn(h, raw, raw.mss_encode, raw.tsecr), a);
    let e = established(h, raw, raw.tsecr, raw.mss_option);
    let shift = u32::from(raw.wscale);
    assert_eq!(
        e.client_ack.header.window,
        h.window.checked_shr(shift).unwrap_or(0)
    );
    send(&e.server_ack, a);
    send(&e.client_ack, a);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let syn_bytes: [u8; HDR_LEN] = input.bytes();
    let info = Info {
        options: input.u8(),
        wscale: input.u8(),
        mss: input.u16(),
    };
    let now = input.u32();
    let isn = input.u32();
    let cookie_mss = input.u16();
    let sel = input.u8();
    let (keepalive, ack_ts, forged, v6) = (sel & 1 != 0, sel & 2 != 0, sel & 4 != 0, sel & 8 != 0);
    let ack_tsval = input.u32();
    let forged_tsecr = input.u32();
    let server_isn = input.u32();
    let server_window = input.u16();
    let max_win = input.u16();
    let n = usize::from(input.u8() % 64);
    let client_area = input.take(n);
    let server_area = input.rest();

    let (v4, v6a) = ([192, 0, 2, 1, 198, 51, 100, 7], [0x20u8; 32]);
    let addrs: &[u8] = if v6 { &v6a } else { &v4 };
    let (cs, ss) = addrs.split_at(addrs.len() / 2);
    let to_client = Addrs { s: ss, d: cs };
    let to_server = Addrs { s: cs, d: ss };
    let valid_rule = check_rule(
        ProtoMatch {
            proto: Some(IPPROTO_TCP),
            inverted: false,
        },
        &info,
    )
    .is_ok();

    // Client SYN.
    let h = Header::read(&syn_bytes);
    let want = if h.flags & SYN != 0 && h.flags & (ACK | FIN | RST) == 0 {
        Segment::Syn
    } else if h.flags & ACK != 0 && h.flags & (SYN | FIN | RST) == 0 {
        Segment::Ack
    } else {
        Segment::Other
    };
    assert_eq!(classify(&h), want);
    let c = Options::parse(client_area);

    // SYN-ACK with the timestamp cookie.
    let r = syn_ack(&info, &h, c, now);
    let ecn = if h.flags & (ECE | CWR) == ECE | CWR {
        OPT_ECN
    } else {
        0
    };
    let agreed = (c.options | ecn) & info.options;
    let o = r.options;
    assert_eq!(o.options & !info.options, 0, "only what the rule allows");
    assert_eq!((o.mss_encode, o.mss_option), (c.mss_option, info.mss));
    if agreed & OPT_TIMESTAMP != 0 {
        assert_eq!(o.options, agreed);
        assert_eq!(o.tsecr, c.tsval, "the client's TSval echoed");
        assert_eq!(o.tsval & !0x3f, now & !0x3f);
        let ws = if agreed & OPT_WSCALE != 0 {
            c.wscale
        } else {
            15
        };
        assert_eq!(
            o.tsval & 0x3f,
            u32::from(ws)
                | (u32::from(agreed & OPT_SACK_PERM) << 2)
                | (u32::from(agreed & OPT_ECN) << 1)
        );
        assert_eq!(
            o.wscale,
            if agreed & OPT_WSCALE != 0 {
                info.wscale
            } else {
                c.wscale
            }
        );
        // The cookie reads back as written.
        let mut back = Options {
            options: OPT_TIMESTAMP,
            tsecr: o.tsval,
            ..Options::default()
        };
        cookie::decode(&mut back);
        assert_eq!(
            back.options,
            OPT_TIMESTAMP | (agreed & (OPT_WSCALE | OPT_SACK_PERM | OPT_ECN))
        );
    } else {
        assert_eq!(o.options, agreed & !(OPT_WSCALE | OPT_SACK_PERM | OPT_ECN));
        assert_eq!((o.tsval, o.tsecr, o.wscale), (c.tsval, c.tsecr, c.wscale));
    }
    if valid_rule && o.options & OPT_WSCALE != 0 {
        assert!(o.wscale <= 14);
    }
    let ece = if o.options & OPT_ECN != 0 { ECE } else { 0 };
    assert_eq!(
        r.header,
        Header {
            sport: h.dport,
            dport: h.sport,
            seq: 0,
            ack_seq: h.seq.wrapping_add(1),
            doff: 0,
            flags: SYN | ACK | ece,
            window: 0,
        }
    );
    let synack = Reply {
        header: Header {
            seq: isn,
            ..r.header
        },
        options: r.options,
    };
    send(&synack, &to_client);

    // The client's ACK, as sent and as read.
    let ack_opts = Options {
        options: if ack_ts { OPT_TIMESTAMP } else { 0 },
        tsval: ack_tsval,
        tsecr: if forged { forged_tsecr } else { o.tsval },
        ..Options::default()
    };
    let ack = Reply {
        header: Header {
            sport: h.sport,
            dport: h.dport,
            seq: h.seq.wrapping_add(if keepalive { 0 } else { 1 }),
            ack_seq: isn.wrapping_add(1),
            doff: 0,
            flags: ACK,
            window: h.window,
        },
        options: ack_opts,
    };
    let (seg, len) = send(&ack, &to_server);
    let ah = Header::read(seg[..HDR_LEN].try_into().unwrap());
    let ao = Options::parse(&seg[HDR_LEN..len]);
    assert_eq!(classify(&ah), Segment::Ack);
    assert_eq!(client_isn(&ah, keepalive), h.seq);

    // SYN to the backend, with what the cookie kept.
    let s = server_syn(&ah, ao, cookie_mss, h.seq);
    let so = s.options;
    assert_eq!(so.mss_option, cookie_mss);
    if ack_ts {
        let t = ao.tsecr;
        let ws = (t & 0xf) as u8;
        let mut bits = OPT_MSS | OPT_TIMESTAMP;
        bits |= if ws != 15 { OPT_WSCALE } else { 0 };
        bits |= if t & 0x10 != 0 { OPT_SACK_PERM } else { 0 };
        bits |= if t & 0x20 != 0 { OPT_ECN } else { 0 };
        assert_eq!((so.options, so.wscale), (bits, ws));
        assert_eq!((so.tsval, so.tsecr), (ack_tsval, t));
        if !forged && agreed & OPT_TIMESTAMP != 0 {
            // The cookie round trip: what the client and the rule agreed on.
            assert_eq!(so.options, OPT_MSS | agreed);
            if agreed & OPT_WSCALE != 0 {
                assert_eq!(so.wscale, c.wscale);
            }
        }
    } else {
        assert_eq!((so.options, so.wscale), (OPT_MSS, 0));
    }
    let ece_cwr = if so.options & OPT_ECN != 0 {
        ECE | CWR
    } else {
        0
    };
    assert_eq!(
        s.header,
        Header {
            sport: h.sport,
            dport: h.dport,
            seq: h.seq,
            ack_seq: isn,
            doff: 0,
            flags: SYN | ece_cwr,
            window: h.window,
        }
    );
    send(&s, &to_server);

    // The backend's SYN-ACK, and both ACKs.
    let sh = Header {
        sport: h.dport,
        dport: h.sport,
        seq: server_isn,
        ack_seq: h.seq.wrapping_add(1),
        doff: 0,
        flags: SYN | ACK,
        window: server_window,
    };
    let bo = Options::parse(server_area);
    any_options(&info, &h, Input(server_area), &to_client);
    let its = o.tsval;
    let e = established(&sh, bo, its, max_win);
    let ts = bo.options & OPT_TIMESTAMP;
    assert_eq!(e.tsoff, (ts != 0).then(|| bo.tsval.wrapping_sub(its)));
    let sa = e.server_ack;
    assert_eq!(
        sa.header,
        Header {
            sport: h.sport,
            dport: h.dport,
            seq: h.seq.wrapping_add(1),
            ack_seq: server_isn.wrapping_add(1),
            doff: 0,
            flags: ACK,
            window: max_win,
        }
    );
    assert_eq!(sa.options.options, ts);
    assert_eq!((sa.options.tsval, sa.options.tsecr), (bo.tsecr, bo.tsval));
    send(&sa, &to_server);
    let ca = e.client_ack;
    assert_eq!(
        ca.header,
        Header {
            sport: h.dport,
            dport: h.sport,
            seq: server_isn.wrapping_add(1),
            ack_seq: h.seq.wrapping_add(1),
            doff: 0,
            flags: ACK,
            window: server_window >> bo.wscale,
        }
    );
    assert_eq!(ca.options.options, ts);
    assert_eq!((ca.options.tsval, ca.options.tsecr), (bo.tsval, bo.tsecr));
    let (mut seg, len) = send(&ca, &to_client);

    // What the client was told, as the target reads it from the ACK, kept in tsoff until the
    // backend answers, then compared with the backend's SYN-ACK (rust/proto/mismatch.rs).
    let told = Told::from_ack(&info, &ao);
    if valid_rule {
        // (checkentry refuses a window scale above 14, which the stash clamps)
        assert_eq!(Told::unstash(told.stash()), Some(told));
    }
    if !forged && ack_ts == (r.options.options & OPT_TIMESTAMP != 0) && c.options & OPT_MSS != 0 {
        assert_eq!(
            told,
            Told::from_options(&r.options),
            "told is what the SYN-ACK said"
        );
    }
    let backend = Told::from_options(&bo);
    let m = Mismatch::find(told, backend);
    assert_eq!(m.has(Kind::Wscale), told.wscale != backend.wscale);
    assert!(!(m.has(Kind::MssLarger) && m.has(Kind::MssSmaller)));
    // With a window-scale difference the window update is translated first (engine.rs
    // translate_window), the checksum kept by an RFC 1624 update of the word at offset 12.
    if let Some(scale) = m.scale() {
        assert!(m.has(Kind::Wscale));
        assert_eq!(Scale::decode(scale.encode()), Some(scale));
        let old = u32::from_be_bytes(seg[12..16].try_into().unwrap());
        let win = scale.translate(ca.header.window);
        assert!(u64::from(win) << scale.client <= u64::from(ca.header.window) << scale.backend);
        let new = with_window(old, win);
        seg[12..16].copy_from_slice(&new.to_be_bytes());
        let check = csum_replace4(check_field(&seg), old, new);
        seg[16..18].copy_from_slice(&check.to_be_bytes());
        assert_eq!(wire::tcp_checksum(to_client.s, to_client.d, &seg[..len]), 0);
    } else {
        // Counted or not (none against 0 is a difference of announcement, not of windows),
        // both sides scale by the same shift.
        let shift = |w: Option<u8>| w.unwrap_or(0).min(14);
        assert_eq!(shift(told.wscale), shift(backend.wscale));
    }

    // From now on the sequence numbers and timestamps are translated: the window update
    // reaches the client in our cookie clock, checksum updated as engine.rs does.
    assert_eq!(
        server_isn.wrapping_add(seq_offset(isn, server_isn) as u32),
        isn
    );
    assert_eq!(
        server_isn.wrapping_add(rst_offset(isn, server_isn) as u32),
        isn.wrapping_add(1)
    );
    let tsoff = e.tsoff.unwrap_or(0);
    let mut check = check_field(&seg);
    let mut calls = 0;
    adjust_timestamps(&mut seg[HDR_LEN..len], Dir::Reply, tsoff, |at, old, new| {
        check = csum_replace4(check, tcp::csum_word(old, at), tcp::csum_word(new, at));
        calls += 1;
    });
    assert_eq!(calls, usize::from(ts != 0 && tsoff != 0));
    seg[16..18].copy_from_slice(&check.to_be_bytes());
    assert_eq!(wire::tcp_checksum(to_client.s, to_client.d, &seg[..len]), 0);
    let seen = Options::parse(&seg[HDR_LEN..len]);
    if ts != 0 {
        assert_eq!(seen.tsval, its, "the client sees our clock");
    }
    // The client echoes it; the backend sees its own clock again.
    let echo = Options {
        tsval: ack_tsval,
        tsecr: seen.tsval,
        ..seen
    };
    let mut out = [0u8; MAX_BUILT_LEN];
    let n = echo.write(&mut out);
    adjust_timestamps(&mut out[..n], Dir::Original, tsoff, |_, _, _| {});
    if ts != 0 {
        assert_eq!(Options::parse(&out[..n]).tsecr, bo.tsval);
    }
});
