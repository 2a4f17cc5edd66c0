//! Backend option mismatch: the stash and window-scale words, what the client was told
//! (against the SYN-ACK `flow::syn_ack` really builds), the comparison, the log line, and the
//! window translation with its checksum update.

use crate::flow;
use crate::info::{Info, OPT_ECN, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use crate::mismatch::{with_window, Kind, Mismatch, Report, Scale, Told, KINDS, NKINDS};
use crate::tcp::{Header, Options, HDR_LEN, SYN};
use proptest::prelude::*;
use std::format;
use std::string::ToString;
use std::vec::Vec;

const FULL: Told = Told {
    wscale: Some(7),
    mss: Some(1460),
    sack: true,
    ts: true,
};

fn arb_told() -> impl Strategy<Value = Told> {
    (
        proptest::option::of(0u8..=14),
        proptest::option::of(1u16..),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(wscale, mss, sack, ts)| Told {
            wscale,
            mss,
            sack,
            ts,
        })
}

proptest! {
    #[test]
    fn stash_round_trips_and_is_never_zero(t in arb_told()) {
        let v = t.stash();
        prop_assert_ne!(v, 0);
        prop_assert_eq!(Told::unstash(v), Some(t));
    }

    #[test]
    fn words_without_the_stash_bit_are_no_stash(v in 0u32..0x8000_0000) {
        prop_assert_eq!(Told::unstash(v), None);
    }

    #[test]
    fn scale_round_trips(backend in 0u8..=14, client in 0u8..=14) {
        let s = Scale { backend, client };
        let want = (backend != client).then_some(s);
        prop_assert_eq!(Scale::decode(s.encode()), want);
    }

    #[test]
    fn other_words_are_no_scale(v: u32) {
        prop_assume!(v & 0xffff_ff00 != 0x5753_ca00);
        prop_assert_eq!(Scale::decode(v), None);
    }

    /// The client never believes more than the backend offers, and (below the clamp) less
    /// only by what its scale cannot express.
    #[test]
    fn translate_rounds_down_and_clamps(win: u16, backend in 0u8..=14, client in 0u8..=14) {
        let s = Scale { backend, client };
        let got = s.translate(win);
        let offered = u64::from(win) << backend;
        let believed = u64::from(got) << client;
        prop_assert!(believed <= offered);
        if offered >> client <= 0xffff {
            prop_assert!(offered - believed < 1 << client);
        } else {
            prop_assert_eq!(got, 0xffff);
        }
        prop_assert_eq!(u32::from(got), ((u32::from(win) << backend) >> client).min(65535));
    }

    /// What `from_ack` reconstructs is what the SYN-ACK of `flow::syn_ack` announced, for
    /// every rule and every client SYN with an MSS, the client echoing the SYN-ACK's TSval.
    #[test]
    fn told_matches_the_syn_ack_sent(
        rule in 0u8..0x20, ws in 0u8..=14, mss in 1u16.., syn_opts in 0u8..0x10,
        cws in 0u8..=14, ecn: bool, tsval: u32, now: u32,
    ) {
        let info = Info { options: rule, wscale: ws, mss };
        let mut c = Options { options: syn_opts | OPT_MSS, wscale: cws, mss_option: 1460, tsval, ..Options::default() };
        c.options &= !OPT_ECN;
        let syn = Header { doff: 5, flags: if ecn { SYN | 0xc0 } else { SYN }, ..Header::default() };
        let r = flow::syn_ack(&info, &syn, c, now);
        let sent = &r.options;
        // The client's ACK: TS echoed if the SYN-ACK had one.
        let mut ack = Options::default();
        if sent.options & OPT_TIMESTAMP != 0 {
            ack.options = OPT_TIMESTAMP;
            ack.tsval = tsval.wrapping_add(1);
            ack.tsecr = sent.tsval;
        }
        let told = Told::from_ack(&info, &ack);
        prop_assert_eq!(told, Told::from_options(sent));
    }

    /// Window field replaced in a segment: the incremental update of the 32-bit word at
    /// offset 12 gives the checksum a full computation gives.
    #[test]
    fn window_checksum_update(seg in proptest::collection::vec(any::<u8>(), HDR_LEN..60), win: u16) {
        let mut seg = seg;
        seg[16] = 0;
        seg[17] = 0;
        crate::wire::set_tcp_checksum(&SRC, &DST, &mut seg);
        let old = u32::from_be_bytes([seg[12], seg[13], seg[14], seg[15]]);
        let new = with_window(old, win);
        let check = csum_replace4(u16::from_be_bytes([seg[16], seg[17]]), old, new);
        seg[12..16].copy_from_slice(&new.to_be_bytes());
        seg[16..18].copy_from_slice(&check.to_be_bytes());
        prop_assert_eq!(u16::from_be_bytes([seg[14], seg[15]]), win);
        prop_assert_eq!(crate::wire::tcp_checksum(&SRC, &DST, &seg), 0);
    }
}

const SRC: [u8; 4] = [10, 0, 2, 99];
const DST: [u8; 4] = [10, 0, 1, 99];

/// RFC 1624 eqn. 3, as `inet_proto_csum_replace4` applies it.
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

fn kinds(m: &Mismatch) -> Vec<Kind> {
    KINDS.iter().copied().filter(|&k| m.has(k)).collect()
}

#[test]
fn kinds_are_the_proc_columns() {
    assert_eq!(KINDS.len(), NKINDS);
    for (i, k) in KINDS.iter().enumerate() {
        assert_eq!(*k as usize, i);
    }
    let header = core::str::from_utf8(crate::mismatch::HEADER).unwrap();
    assert_eq!(header.split_whitespace().count(), NKINDS + 1);
}

#[test]
fn each_kind_alone() {
    let cases = [
        (
            Told {
                wscale: Some(2),
                ..FULL
            },
            Kind::Wscale,
        ),
        (
            Told {
                wscale: None,
                ..FULL
            },
            Kind::Wscale,
        ),
        (
            Told {
                mss: Some(1500),
                ..FULL
            },
            Kind::MssLarger,
        ),
        (
            Told {
                mss: Some(1200),
                ..FULL
            },
            Kind::MssSmaller,
        ),
        (Told { mss: None, ..FULL }, Kind::MssSmaller),
        (
            Told {
                sack: false,
                ..FULL
            },
            Kind::SackAbsent,
        ),
        (Told { ts: false, ..FULL }, Kind::TsAbsent),
    ];
    for (backend, kind) in cases {
        assert_eq!(kinds(&Mismatch::find(FULL, backend)), [kind], "{backend:?}");
    }
    assert_eq!(Mismatch::find(FULL, FULL).kinds, 0);
    // More than the client was told is no mismatch for SACK and timestamps; without an MSS
    // in the rule, the MSS is not compared.
    let bare = Told::default();
    assert_eq!(
        Mismatch::find(
            bare,
            Told {
                wscale: None,
                ..FULL
            }
        )
        .kinds,
        0
    );
}

#[test]
fn scale_only_for_a_window_scale_difference() {
    let m = Mismatch::find(
        FULL,
        Told {
            wscale: Some(2),
            ..FULL
        },
    );
    assert_eq!(
        m.scale(),
        Some(Scale {
            backend: 2,
            client: 7
        })
    );
    let m = Mismatch::find(
        FULL,
        Told {
            wscale: None,
            ..FULL
        },
    );
    assert_eq!(
        m.scale(),
        Some(Scale {
            backend: 0,
            client: 7
        })
    );
    assert_eq!(
        Mismatch::find(
            FULL,
            Told {
                mss: Some(1),
                ..FULL
            }
        )
        .scale(),
        None
    );
    // 65535 << 2 read with scale 7, and 1000 << 9 read with 7.
    assert_eq!(
        Scale {
            backend: 2,
            client: 7
        }
        .translate(65535),
        2047
    );
    assert_eq!(
        Scale {
            backend: 9,
            client: 7
        }
        .translate(1000),
        4000
    );
    assert_eq!(
        Scale {
            backend: 9,
            client: 7
        }
        .translate(20000),
        65535
    );
}

#[test]
fn report_names_backend_and_both_values() {
    let all = Told {
        wscale: Some(2),
        mss: Some(1200),
        sack: false,
        ts: false,
    };
    let m = Mismatch::find(FULL, all);
    let line = Report {
        backend: "10.0.2.99".parse().unwrap(),
        port: 8080,
        m: &m,
    }
    .to_string();
    assert_eq!(
        line,
        "backend 10.0.2.99:8080 announces other options than the client was given: \
         wscale 2 (client told 7), mss 1200 (client told 1460, smaller), \
         no sackOK (client told sackOK), no TS (client told TS)"
    );
    let m = Mismatch::find(
        FULL,
        Told {
            wscale: None,
            mss: Some(9000),
            ..FULL
        },
    );
    let line = format!(
        "{}",
        Report {
            backend: "fd00:2::99".parse().unwrap(),
            port: 80,
            m: &m,
        }
    );
    assert_eq!(
        line,
        "backend [fd00:2::99]:80 announces other options than the client was given: \
         wscale none (client told 7), mss 9000 (client told 1460, larger)"
    );
}

#[test]
fn from_ack_without_timestamps_told_only_the_mss() {
    let info = Info {
        options: OPT_MSS | OPT_WSCALE | OPT_SACK_PERM | OPT_TIMESTAMP,
        wscale: 7,
        mss: 1460,
    };
    let ack = Options::default();
    assert_eq!(
        Told::from_ack(&info, &ack),
        Told {
            mss: Some(1460),
            ..Told::default()
        }
    );
}
