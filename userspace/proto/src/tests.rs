use crate::info::*;
use crate::stats::*;
use std::format;
use std::string::ToString;

const TCP: ProtoMatch = ProtoMatch {
    proto: Some(IPPROTO_TCP),
    inverted: false,
};

fn info(options: u8, wscale: u8, mss: u16) -> Info {
    Info {
        options,
        wscale,
        mss,
    }
}

#[test]
fn check_rule_accepts_the_seed_recipe() {
    let i = info(
        OPT_SACK_PERM | OPT_TIMESTAMP | OPT_WSCALE | OPT_MSS,
        9,
        1460,
    );
    assert_eq!(check_rule(TCP, &i), Ok(()));
}

#[test]
fn check_rule_protocol() {
    let i = Info::default();
    assert_eq!(
        check_rule(
            ProtoMatch {
                proto: None,
                inverted: false
            },
            &i
        ),
        Err(RuleError::NotTcp)
    );
    assert_eq!(
        check_rule(
            ProtoMatch {
                proto: Some(17),
                inverted: false
            },
            &i
        ),
        Err(RuleError::NotTcp)
    );
    assert_eq!(
        check_rule(
            ProtoMatch {
                proto: Some(IPPROTO_TCP),
                inverted: true
            },
            &i
        ),
        Err(RuleError::ProtoInverted)
    );
}

#[test]
fn check_rule_every_option_byte() {
    // Exhaustive over the options byte and wscale, with the MSS at its edges.
    for options in 0..=255u8 {
        for wscale in 0..=255u8 {
            for mss in [0u16, 1, 1460, 65535] {
                let got = check_rule(TCP, &info(options, wscale, mss));
                let want = if options & !OPT_KNOWN != 0 {
                    Err(RuleError::UnknownOptions(options & !OPT_KNOWN))
                } else if options & OPT_WSCALE != 0 && wscale > 14 {
                    Err(RuleError::WscaleTooLarge(wscale))
                } else if options & OPT_MSS != 0 && mss == 0 {
                    Err(RuleError::MssZero)
                } else {
                    Ok(())
                };
                assert_eq!(got, want, "options {options:#x} wscale {wscale} mss {mss}");
            }
        }
    }
}

#[test]
fn rule_errors_name_the_reason() {
    assert_eq!(RuleError::NotTcp.to_string(), "rule must match -p tcp");
    assert_eq!(
        RuleError::UnknownOptions(0xe0).to_string(),
        "unknown option bits 0xe0"
    );
    assert_eq!(
        RuleError::WscaleTooLarge(15).to_string(),
        "wscale 15 is above the maximum of 14"
    );
    assert_eq!(RuleError::MssZero.to_string(), "mss must be 1-65535");
}

/// What C's `seq_printf(seq, "%08x\t%08x\t%08x\t%08x\t%08x\t%08x\n", 0, ...)` prints.
fn c_line(c: &[u32; NSTATS]) -> std::string::String {
    format!(
        "{:08x}\t{:08x}\t{:08x}\t{:08x}\t{:08x}\t{:08x}\n",
        0, c[0], c[1], c[2], c[3], c[4]
    )
}

#[test]
fn proc_line_matches_c_format() {
    for c in [
        [0u32; 5],
        [1, 2, 3, 4, 5],
        [u32::MAX, 0xdeadbeef, 0x10, 0xabcdef, 7],
        [0x80000000; 5],
    ] {
        let line = format_line(&c);
        assert_eq!(std::str::from_utf8(&line).unwrap(), c_line(&c));
    }
}

#[test]
fn split_gives_each_file_its_counters_in_order() {
    let mut all = [0u32; NCOUNTERS];
    for (i, v) in all.iter_mut().enumerate() {
        *v = 100 + i as u32;
    }
    let (stats, kinds) = split(&all);
    assert_eq!(stats[..], all[..NSTATS]);
    assert_eq!(kinds[..], all[NSTATS..]);
}

#[test]
fn proc_header_matches_c() {
    assert_eq!(
        HEADER,
        b"entries\t\tsyn_received\tcookie_invalid\tcookie_valid\tcookie_retrans\tconn_reopened\n"
    );
}

#[test]
fn stat_columns_follow_the_header() {
    let names: std::vec::Vec<&str> = std::str::from_utf8(HEADER)
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    let order = [
        Stat::SynReceived,
        Stat::CookieInvalid,
        Stat::CookieValid,
        Stat::CookieRetrans,
        Stat::ConnReopened,
    ];
    assert_eq!(names.len(), NSTATS);
    for (i, s) in order.iter().enumerate() {
        assert_eq!(*s as usize, i, "{} out of place", names[i]);
    }
}
