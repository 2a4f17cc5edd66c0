//! `cookie` (`synproxy_init_timestamp_cookie`, `synproxy_check_timestamp_cookie`) and `flow`
//! (the decisions of `synproxy_tg4`/`ipv4_synproxy_hook` and the `synproxy_send_*` headers).

use crate::cookie;
use crate::flow::*;
use crate::info::{Info, OPT_ECN, OPT_KNOWN, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use crate::tcp::{Header, Options, ACK, CWR, ECE, FIN, RST, SYN};

/// The rule of the usual recipe, with ECN.
const RULE: Info = Info {
    options: OPT_KNOWN,
    wscale: 9,
    mss: 1400,
};

/// A client's SYN options: MSS 1460, TS, and the given window scale, SACK and ECN.
fn client(wscale: Option<u8>, sack: bool, ecn: bool) -> Options {
    let mut options = OPT_MSS | OPT_TIMESTAMP;
    if wscale.is_some() {
        options |= OPT_WSCALE;
    }
    if sack {
        options |= OPT_SACK_PERM;
    }
    if ecn {
        options |= OPT_ECN;
    }
    Options {
        options,
        wscale: wscale.unwrap_or(0),
        mss_option: 1460,
        mss_encode: 0,
        tsval: 0xc11e_4700,
        tsecr: 0,
    }
}

// --- cookie ------------------------------------------------------------------------------

#[test]
fn cookie_exact_value() {
    let mut o = client(Some(7), true, true);
    cookie::encode(&RULE, &mut o, 0x1234_5678);
    // Clock 0x12345640, wscale 7, SACK (bit 4), ECN (bit 5).
    assert_eq!(o.tsval, 0x1234_5677);
    assert_eq!(o.tsecr, 0xc11e_4700);
    assert_eq!(o.wscale, 9);
    // Untouched.
    assert_eq!(o.options, client(Some(7), true, true).options);
    assert_eq!(o.mss_option, 1460);
}

#[test]
fn cookie_round_trip() {
    let wscales = (0..=14).map(Some).chain([None]);
    for wscale in wscales {
        for sack in [false, true] {
            for ecn in [false, true] {
                let now = 0xdead_beef;
                let mut o = client(wscale, sack, ecn);
                cookie::encode(&RULE, &mut o, now);
                let what = (wscale, sack, ecn);
                assert_eq!(o.tsval & !0x3f, now & !0x3f, "{what:?}");
                assert_eq!(o.tsval & 0xf, u32::from(wscale.unwrap_or(15)), "{what:?}");
                assert_eq!(o.tsval & 0x10 != 0, sack, "{what:?}");
                assert_eq!(o.tsval & 0x20 != 0, ecn, "{what:?}");
                assert_eq!(o.tsecr, 0xc11e_4700, "the client's TSval is echoed");
                // Announced: the rule's scale, only when the client has one.
                assert_eq!(o.wscale, if wscale.is_some() { 9 } else { 0 });

                // The client's ACK echoes the cookie in its TSecr.
                let mut ack = Options {
                    options: OPT_TIMESTAMP,
                    tsval: 1,
                    tsecr: o.tsval,
                    ..Options::default()
                };
                cookie::decode(&mut ack);
                let mut want = OPT_TIMESTAMP;
                if wscale.is_some() {
                    want |= OPT_WSCALE;
                }
                if sack {
                    want |= OPT_SACK_PERM;
                }
                if ecn {
                    want |= OPT_ECN;
                }
                assert_eq!(ack.options, want, "{what:?}");
                assert_eq!(ack.wscale, wscale.unwrap_or(15), "{what:?}");
                assert_eq!((ack.tsval, ack.tsecr), (1, o.tsval), "{what:?}");
            }
        }
    }
}

#[test]
fn cookie_clears_low_clock_bits() {
    for (now, want) in [
        (0, 0x0f),
        (0x3f, 0x0f),
        (0x40, 0x4f),
        (0x7f, 0x4f),
        (u32::MAX, 0xffff_ffcf),
    ] {
        let mut o = Options {
            options: OPT_TIMESTAMP,
            ..Options::default()
        };
        cookie::encode(&RULE, &mut o, now);
        assert_eq!(o.tsval, want, "now {now:#x}");
    }
}

#[test]
fn cookie_decode_keeps_other_bits() {
    // 0x2f: no window scale (0xf), no SACK, ECN.
    let mut o = Options {
        options: OPT_MSS | OPT_TIMESTAMP,
        wscale: 3,
        tsecr: 0xabc0_002f,
        ..Options::default()
    };
    cookie::decode(&mut o);
    assert_eq!(o.options, OPT_MSS | OPT_TIMESTAMP | OPT_ECN);
    assert_eq!(o.wscale, 15);
}

// --- classify ----------------------------------------------------------------------------

#[test]
fn classify_every_flag_byte() {
    for flags in 0..=255u8 {
        let h = Header {
            flags,
            ..Header::default()
        };
        let (syn, ack, fin, rst) = (
            flags & SYN != 0,
            flags & ACK != 0,
            flags & FIN != 0,
            flags & RST != 0,
        );
        let want = if syn && !ack && !fin && !rst {
            Segment::Syn
        } else if ack && !fin && !rst && !syn {
            Segment::Ack
        } else {
            Segment::Other
        };
        assert_eq!(classify(&h), want, "flags {flags:#04x}");
    }
}

// --- syn_ack -----------------------------------------------------------------------------

const CLIENT_SYN: Header = Header {
    sport: 40000,
    dport: 80,
    seq: 1000,
    ack_seq: 0,
    doff: 10,
    flags: SYN | ECE | CWR,
    window: 64240,
};

#[test]
fn syn_ack_full() {
    let r = syn_ack(
        &RULE,
        &CLIENT_SYN,
        client(Some(7), true, false),
        0x0001_0000,
    );
    assert_eq!(
        r,
        Reply {
            header: Header {
                sport: 80,
                dport: 40000,
                seq: 0,
                ack_seq: 1001,
                doff: 0,
                flags: SYN | ACK | ECE,
                window: 0,
            },
            options: Options {
                options: OPT_MSS | OPT_TIMESTAMP | OPT_WSCALE | OPT_SACK_PERM | OPT_ECN,
                wscale: 9,
                mss_option: 1400,
                mss_encode: 1460,
                tsval: 0x0001_0000 | 7 | 0x10 | 0x20,
                tsecr: 0xc11e_4700,
            },
        }
    );
}

#[test]
fn syn_ack_seq_wraps() {
    let h = Header {
        seq: u32::MAX,
        ..CLIENT_SYN
    };
    assert_eq!(
        syn_ack(&RULE, &h, client(None, false, false), 0)
            .header
            .ack_seq,
        0
    );
}

#[test]
fn syn_ack_ece_only_when_ecn_negotiated() {
    // (SYN flags, rule options, client has TS) -> ECE in the SYN-ACK
    let cases = [
        (SYN | ECE | CWR, OPT_KNOWN, true, true),
        (SYN | ECE, OPT_KNOWN, true, false),
        (SYN | CWR, OPT_KNOWN, true, false),
        (SYN, OPT_KNOWN, true, false),
        (SYN | ECE | CWR, OPT_KNOWN & !OPT_ECN, true, false),
        // ECN is kept in the timestamp cookie: without timestamps, none.
        (SYN | ECE | CWR, OPT_KNOWN & !OPT_TIMESTAMP, true, false),
        (SYN | ECE | CWR, OPT_KNOWN, false, false),
    ];
    for (flags, rule, ts, ece) in cases {
        let info = Info {
            options: rule,
            ..RULE
        };
        let h = Header {
            flags,
            ..CLIENT_SYN
        };
        let mut o = client(Some(7), true, false);
        if !ts {
            o.options &= !OPT_TIMESTAMP;
        }
        let r = syn_ack(&info, &h, o, 0);
        let want = if ece { SYN | ACK | ECE } else { SYN | ACK };
        assert_eq!(r.header.flags, want, "{flags:#x} {rule:#x} {ts}");
        assert_eq!(r.options.options & OPT_ECN != 0, ece);
    }
}

#[test]
fn syn_ack_options_follow_the_rule() {
    // Every rule against every client option set, with and without ECE|CWR.
    for rule in 0..=OPT_KNOWN {
        for sent in 0..16u8 {
            for flags in [SYN, SYN | ECE | CWR] {
                let info = Info {
                    options: rule,
                    ..RULE
                };
                let o = Options {
                    options: sent,
                    wscale: 4,
                    mss_option: 1220,
                    tsval: 77,
                    ..Options::default()
                };
                let h = Header {
                    flags,
                    ..CLIENT_SYN
                };
                let r = syn_ack(&info, &h, o, 0x4000);
                let mut want = sent & rule;
                if flags & ECE != 0 {
                    want |= rule & OPT_ECN;
                }
                let timestamps = want & OPT_TIMESTAMP != 0;
                if !timestamps {
                    want &= !(OPT_WSCALE | OPT_SACK_PERM | OPT_ECN);
                }
                let what = (rule, sent, flags);
                assert_eq!(r.options.options, want, "{what:?}");
                assert_eq!(r.options.mss_encode, 1220, "{what:?}");
                assert_eq!(r.options.mss_option, 1400, "{what:?}");
                if timestamps {
                    assert_eq!(r.options.tsecr, 77, "{what:?}");
                    assert_eq!(r.options.tsval & !0x3f, 0x4000, "{what:?}");
                } else {
                    assert_eq!((r.options.tsval, r.options.tsecr), (77, 0), "{what:?}");
                }
                // The rule's scale replaces the client's only inside the cookie.
                let announced = timestamps && want & OPT_WSCALE != 0;
                assert_eq!(r.options.wscale, if announced { 9 } else { 4 }, "{what:?}");
            }
        }
    }
}

#[test]
fn syn_ack_without_client_mss() {
    // mss_encode is what the client sent, 0 when nothing: the cookie code picks the
    // smallest MSS for it.
    let mut o = client(Some(1), false, false);
    o.options &= !OPT_MSS;
    o.mss_option = 0;
    let r = syn_ack(&RULE, &CLIENT_SYN, o, 0);
    assert_eq!((r.options.mss_encode, r.options.mss_option), (0, 1400));
    assert_eq!(r.options.options & OPT_MSS, 0);
}

// --- server_syn and client_isn -----------------------------------------------------------

/// The client's ACK completing the handshake with our cookie ISN 0x5000.
const CLIENT_ACK: Header = Header {
    sport: 40000,
    dport: 80,
    seq: 1001,
    ack_seq: 0x5001,
    doff: 8,
    flags: ACK,
    window: 502,
};

#[test]
fn server_syn_full() {
    let o = Options {
        options: OPT_TIMESTAMP,
        tsval: 0xc11e_4800,
        tsecr: 0x0001_0037, // the cookie: wscale 7, SACK, ECN
        ..Options::default()
    };
    let r = server_syn(&CLIENT_ACK, o, 1460, client_isn(&CLIENT_ACK, false));
    assert_eq!(
        r,
        Reply {
            header: Header {
                sport: 40000,
                dport: 80,
                seq: 1000,
                ack_seq: 0x5000,
                doff: 0,
                flags: SYN | ECE | CWR,
                window: 502,
            },
            options: Options {
                options: OPT_MSS | OPT_TIMESTAMP | OPT_WSCALE | OPT_SACK_PERM | OPT_ECN,
                wscale: 7,
                mss_option: 1460,
                mss_encode: 0,
                tsval: 0xc11e_4800,
                tsecr: 0x0001_0037,
            },
        }
    );
}

#[test]
fn server_syn_without_timestamps() {
    // The TSecr is not read as a cookie when the ACK has no timestamp.
    let o = Options {
        options: OPT_SACK_PERM,
        tsecr: 0x37,
        ..Options::default()
    };
    let h = Header {
        ack_seq: 0,
        ..CLIENT_ACK
    };
    let r = server_syn(&h, o, 536, 7);
    assert_eq!(r.options.options, OPT_MSS | OPT_SACK_PERM);
    assert_eq!((r.options.mss_option, r.options.wscale), (536, 0));
    assert_eq!(r.header.flags, SYN);
    assert_eq!(r.header.seq, 7);
    assert_eq!(r.header.ack_seq, u32::MAX, "wraps");
}

#[test]
fn server_syn_no_wscale_in_cookie() {
    let o = Options {
        options: OPT_TIMESTAMP,
        tsecr: 0x4f,
        ..Options::default()
    };
    let r = server_syn(&CLIENT_ACK, o, 1460, 1000);
    assert_eq!(r.options.options, OPT_MSS | OPT_TIMESTAMP);
    assert_eq!(r.header.flags, SYN);
}

#[test]
fn client_isn_handshake_and_keepalive() {
    let h = |seq| Header { seq, ..CLIENT_ACK };
    assert_eq!(client_isn(&h(1001), false), 1000);
    assert_eq!(client_isn(&h(0), false), u32::MAX);
    // A keep-alive is sent at SND.NXT - 1, which is the ISN itself.
    assert_eq!(client_isn(&h(1000), true), 1000);
    assert_eq!(client_isn(&h(0), true), 0);
}

// --- established -------------------------------------------------------------------------

/// Our cookie TSval.
const ITS: u32 = 0x0001_0037;

/// The backend's SYN-ACK to our SYN (cookie ISN 0x5000, client ISN 1000).
const BACKEND_SYN_ACK: Header = Header {
    sport: 80,
    dport: 40000,
    seq: 0x7777_0000,
    ack_seq: 1001,
    doff: 10,
    flags: SYN | ACK,
    window: 65535,
};

fn backend_options(wscale: u8) -> Options {
    Options {
        options: OPT_MSS | OPT_SACK_PERM | OPT_TIMESTAMP | OPT_WSCALE,
        wscale,
        mss_option: 1460,
        mss_encode: 0,
        tsval: 0x0bad_cafe,
        tsecr: ITS,
    }
}

#[test]
fn established_full() {
    let e = established(&BACKEND_SYN_ACK, backend_options(7), ITS, 502);
    let left = Options {
        options: OPT_TIMESTAMP,
        ..backend_options(7)
    };
    assert_eq!(
        e,
        Established {
            tsoff: Some(0x0bad_cafe - ITS),
            server_ack: Reply {
                header: Header {
                    sport: 40000,
                    dport: 80,
                    seq: 1001,
                    ack_seq: 0x7777_0001,
                    doff: 0,
                    flags: ACK,
                    window: 502,
                },
                // Timestamps swapped: we echo the backend's TSval.
                options: Options {
                    tsval: ITS,
                    tsecr: 0x0bad_cafe,
                    ..left
                },
            },
            client_ack: Reply {
                header: Header {
                    sport: 80,
                    dport: 40000,
                    seq: 0x7777_0001,
                    ack_seq: 1001,
                    doff: 0,
                    flags: ACK,
                    window: 65535 >> 7,
                },
                options: left,
            },
        }
    );
}

#[test]
fn established_tsoff_wraps() {
    let mut o = backend_options(0);
    o.tsval = 5;
    let e = established(&BACKEND_SYN_ACK, o, 10, 0);
    assert_eq!(e.tsoff, Some(0xffff_fffb));
    // Adding it back to our clock gives the backend's.
    assert_eq!(10u32.wrapping_add(e.tsoff.unwrap()), 5);
}

#[test]
fn established_without_timestamps() {
    let mut o = backend_options(3);
    o.options &= !OPT_TIMESTAMP;
    let e = established(&BACKEND_SYN_ACK, o, ITS, 502);
    assert_eq!(e.tsoff, None);
    assert_eq!(e.server_ack.options.options, 0);
    assert_eq!(e.client_ack.options.options, 0);
    assert_eq!(e.client_ack.header.window, 65535 >> 3);
}

#[test]
fn established_window_scales() {
    // Window scale 15 cannot come from parse (which clamps to 14) and 16 and above would
    // overflow the shift: the window is then 0, with no panic.
    for (wscale, want) in [
        (0, 0xabcd),
        (1, 0x55e6),
        (14, 2),
        (15, 1),
        (16, 0),
        (31, 0),
        (32, 0),
        (255, 0),
    ] {
        let h = Header {
            window: 0xabcd,
            ..BACKEND_SYN_ACK
        };
        let e = established(&h, backend_options(wscale), ITS, 0);
        assert_eq!(e.client_ack.header.window, want, "wscale {wscale}");
    }
}

#[test]
fn established_seq_wraps() {
    let h = Header {
        seq: u32::MAX,
        ..BACKEND_SYN_ACK
    };
    let e = established(&h, backend_options(0), ITS, 0);
    assert_eq!(e.server_ack.header.ack_seq, 0);
    assert_eq!(e.client_ack.header.seq, 0);
}

// --- seqadj offsets ----------------------------------------------------------------------

#[test]
fn rst_offset_values() {
    assert_eq!(rst_offset(1000, 0), 1001);
    assert_eq!(rst_offset(0, 1), 0);
    assert_eq!(rst_offset(0, 0), 1);
    assert_eq!(rst_offset(5, 10), -4);
    assert_eq!(rst_offset(0x8000_0000, 0), -0x7fff_ffff);
    // The RST seq moved by the offset lands on ISN + 1.
    for (isn, seq) in [(1000u32, 0u32), (7, u32::MAX), (u32::MAX, 3)] {
        let off = rst_offset(isn, seq);
        assert_eq!(seq.wrapping_add(off as u32), isn.wrapping_add(1));
    }
}

#[test]
fn seq_offset_values() {
    assert_eq!(seq_offset(1000, 5000), -4000);
    assert_eq!(seq_offset(5000, 1000), 4000);
    assert_eq!(seq_offset(0, u32::MAX), 1);
    assert_eq!(seq_offset(u32::MAX, 0), -1);
    // The backend's sequence numbers moved by the offset are ours.
    for (isn, server) in [(0x5000u32, 0x7777_0000u32), (1, u32::MAX), (u32::MAX, 0)] {
        assert_eq!(server.wrapping_add(seq_offset(isn, server) as u32), isn);
    }
}
