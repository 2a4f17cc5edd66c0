//! `/proc/net/stat/rsynproxy` and `/proc/net/stat/synproxy`: one header line, then one line
//! per possible CPU of six hexadecimal columns (`entries`, always 0, then the counters).
//! `/proc/net/stat/rsynproxy_mismatch` has the same shape, with its own header.

use rsynproxy_proto::mismatch;
use rsynproxy_proto::stats::{HEADER, NSTATS};
use std::fmt::Write;

/// Counter names, in column order.
pub const NAMES: [&str; NSTATS] = [
    "syn_received",
    "cookie_invalid",
    "cookie_valid",
    "cookie_retrans",
    "conn_reopened",
];

/// Backend option mismatch counters (`/proc/net/stat/rsynproxy_mismatch`), in column order.
pub const MISMATCH_NAMES: [&str; NSTATS] = [
    "wscale",
    "mss_larger",
    "mss_smaller",
    "sack_absent",
    "ts_absent",
];

/// What each mismatch counter counts, for the Prometheus `# HELP` lines.
const MISMATCH_HELP: [&str; NSTATS] = [
    "Backend SYN-ACKs whose window scale differs from the one the client was told (windows translated).",
    "Backend SYN-ACKs with a larger MSS than the one the client was told.",
    "Backend SYN-ACKs with a smaller MSS than the one the client was told.",
    "Backend SYN-ACKs without SACK-permitted where the client was told it.",
    "Backend SYN-ACKs without timestamps where the client was told them.",
];

/// Sums the per-CPU lines of a stat file.
pub fn parse(text: &str) -> Result<[u64; NSTATS], String> {
    parse_as(text, HEADER)
}

/// Sums the per-CPU lines of `/proc/net/stat/rsynproxy_mismatch`.
pub fn parse_mismatch(text: &str) -> Result<[u64; NSTATS], String> {
    parse_as(text, mismatch::HEADER)
}

fn parse_as(text: &str, want: &[u8]) -> Result<[u64; NSTATS], String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty file")?;
    if header.as_bytes() != &want[..want.len() - 1] {
        return Err(format!("unexpected header {header:?}"));
    }
    let mut total = [0u64; NSTATS];
    for (n, line) in lines.enumerate() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != NSTATS + 1 {
            return Err(format!(
                "line {}: {} columns, want {}",
                n + 2,
                cols.len(),
                NSTATS + 1
            ));
        }
        for (t, c) in total.iter_mut().zip(&cols[1..]) {
            *t += u64::from_str_radix(c, 16).map_err(|e| format!("line {}: {c:?}: {e}", n + 2))?;
        }
    }
    Ok(total)
}

/// Per-second rates between two readings `secs` apart (counters are 32-bit per CPU and may
/// wrap; a decrease counts as 0).
pub fn rates(prev: &[u64; NSTATS], cur: &[u64; NSTATS], secs: f64) -> [f64; NSTATS] {
    let mut r = [0.0; NSTATS];
    for i in 0..NSTATS {
        r[i] = cur[i].saturating_sub(prev[i]) as f64 / secs;
    }
    r
}

/// A table: the file, then per counter its name, total and, with a previous reading, the
/// rate.
pub fn table(
    file: &str,
    names: &[&str; NSTATS],
    total: &[u64; NSTATS],
    rate: Option<&[f64; NSTATS]>,
) -> String {
    let mut s = format!("{file}:\n");
    for i in 0..NSTATS {
        let _ = write!(s, "  {:<16}{:>14}", names[i], total[i]);
        if let Some(r) = rate {
            let _ = write!(s, "{:>12.1}/s", r[i]);
        }
        s.push('\n');
    }
    s
}

/// One JSON object: `{"file":…,"totals":{…},"rates":{…}}`.
pub fn json(
    file: &str,
    names: &[&str; NSTATS],
    total: &[u64; NSTATS],
    rate: Option<&[f64; NSTATS]>,
) -> String {
    let obj = |vals: Vec<String>| {
        let body: Vec<String> = names
            .iter()
            .zip(vals)
            .map(|(n, v)| format!("\"{n}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    };
    let mut s = format!(
        "{{\"file\":\"{file}\",\"totals\":{}",
        obj(total.iter().map(u64::to_string).collect())
    );
    if let Some(r) = rate {
        let _ = write!(
            s,
            ",\"rates\":{}",
            obj(r.iter().map(|v| format!("{v:.3}")).collect())
        );
    }
    s.push('}');
    s
}

/// What each counter counts, for the Prometheus `# HELP` lines.
const HELP: [&str; NSTATS] = [
    "Client SYNs answered with a syncookie SYN-ACK.",
    "Client ACKs whose syncookie did not verify.",
    "Client ACKs whose syncookie verified (a backend SYN was sent).",
    "Backend SYNs sent again for a retransmitted client ACK.",
    "Connections reopened from conntrack state CLOSE by a new SYN.",
];

/// One reading for the Prometheus output: the namespace (`""` for the caller's own), the
/// target whose file it is, the totals, and the mismatch counters where the target has them.
pub struct Sample<'a> {
    pub netns: &'a str,
    pub target: &'a str,
    pub total: [u64; NSTATS],
    pub mismatch: Option<[u64; NSTATS]>,
}

/// A label value with `\`, `"` and newlines escaped as the text exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition format (for node_exporter's textfile collector): one
/// counter family per column, `rsynproxy_<name>_total{netns="…",target="…"}`, the samples of
/// a family together. Counters are sums of 32-bit per-CPU values, so they can wrap; Prometheus
/// treats a decrease as a reset.
pub fn prometheus(samples: &[Sample<'_>]) -> String {
    let mut s = String::new();
    let families = NAMES
        .iter()
        .zip(HELP)
        .enumerate()
        .map(|(i, (n, h))| (format!("rsynproxy_{n}_total"), h, i, false));
    let mismatch = MISMATCH_NAMES
        .iter()
        .zip(MISMATCH_HELP)
        .enumerate()
        .map(|(i, (n, h))| (format!("rsynproxy_mismatch_{n}_total"), h, i, true));
    let any_mismatch = samples.iter().any(|x| x.mismatch.is_some());
    for (name, help, i, is_mismatch) in families.chain(mismatch) {
        if is_mismatch && !any_mismatch {
            continue;
        }
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} counter");
        for x in samples {
            let value = if is_mismatch {
                match x.mismatch {
                    Some(m) => m[i],
                    None => continue,
                }
            } else {
                x.total[i]
            };
            let _ = writeln!(
                s,
                "{name}{{netns=\"{}\",target=\"{}\"}} {value}",
                label(x.netns),
                label(x.target),
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CPUS: &str =
        "entries\t\tsyn_received\tcookie_invalid\tcookie_valid\tcookie_retrans\tconn_reopened\n\
        00000000\t00002836\t00000000\t00000007\t00000000\t00000000\n\
        00000000\t00004d04\t00000001\t00000003\t00000000\tffffffff\n";

    #[test]
    fn sums_hex_columns_over_cpus() {
        assert_eq!(
            parse(TWO_CPUS),
            Ok([0x2836 + 0x4d04, 1, 10, 0, 0xffff_ffff])
        );
    }

    #[test]
    fn refuses_other_files() {
        assert!(parse("").is_err());
        assert!(parse("entries\tfoo\n")
            .unwrap_err()
            .contains("unexpected header"));
        let short = TWO_CPUS.replace("\t00000000\n", "\n");
        assert!(parse(&short).unwrap_err().contains("columns"));
        let bad = TWO_CPUS.replace("00004d04", "0000zz04");
        assert!(parse(&bad).unwrap_err().contains("0000zz04"));
    }

    #[test]
    fn rates_and_output() {
        let a = [10, 0, 5, 0, 0];
        let b = [30, 2, 6, 0, 0];
        let r = rates(&a, &b, 2.0);
        assert_eq!(r, [10.0, 1.0, 0.5, 0.0, 0.0]);
        assert_eq!(rates(&b, &a, 1.0), [0.0; 5]);
        let t = table("rsynproxy", &NAMES, &b, Some(&r));
        assert!(
            t.contains("  syn_received                30        10.0/s\n"),
            "{t}"
        );
        assert_eq!(
            json("rsynproxy", &NAMES, &b, None),
            "{\"file\":\"rsynproxy\",\"totals\":{\"syn_received\":30,\"cookie_invalid\":2,\
             \"cookie_valid\":6,\"cookie_retrans\":0,\"conn_reopened\":0}}"
        );
        assert!(json("x", &NAMES, &b, Some(&r)).ends_with("\"conn_reopened\":0.000}}"));
    }

    #[test]
    fn prometheus_families_group_their_samples() {
        let out = prometheus(&[
            Sample {
                netns: "",
                target: "RSYNPROXY",
                total: [30, 2, 6, 0, 1],
                mismatch: None,
            },
            Sample {
                netns: "we\"b\\1\n",
                target: "SYNPROXY",
                total: [7, 0, 0, 0, 0x1_0000_0000],
                mismatch: None,
            },
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5 * 4);
        assert_eq!(
            lines[..4],
            [
                "# HELP rsynproxy_syn_received_total Client SYNs answered with a syncookie SYN-ACK.",
                "# TYPE rsynproxy_syn_received_total counter",
                "rsynproxy_syn_received_total{netns=\"\",target=\"RSYNPROXY\"} 30",
                "rsynproxy_syn_received_total{netns=\"we\\\"b\\\\1\\n\",target=\"SYNPROXY\"} 7",
            ]
        );
        assert_eq!(
            lines[19],
            "rsynproxy_conn_reopened_total{netns=\"we\\\"b\\\\1\\n\",target=\"SYNPROXY\"} 4294967296"
        );
        for (i, n) in NAMES.iter().enumerate() {
            assert_eq!(
                lines[4 * i + 1],
                format!("# TYPE rsynproxy_{n}_total counter")
            );
        }
    }

    #[test]
    fn mismatch_file_and_families() {
        let text = "entries\t\twscale\tmss_larger\tmss_smaller\tsack_absent\tts_absent\n\
            00000000\t00000001\t00000000\t00000002\t00000000\t00000000\n\
            00000000\t00000003\t00000000\t00000000\t00000000\t0000000a\n";
        assert_eq!(parse_mismatch(text), Ok([4, 0, 2, 0, 10]));
        assert!(parse(text).unwrap_err().contains("unexpected header"));
        assert!(parse_mismatch(TWO_CPUS)
            .unwrap_err()
            .contains("unexpected header"));
        let h = core::str::from_utf8(mismatch::HEADER).unwrap();
        assert_eq!(
            h.split_whitespace().skip(1).collect::<Vec<_>>(),
            MISMATCH_NAMES
        );
        let t = table(
            "rsynproxy_mismatch",
            &MISMATCH_NAMES,
            &[4, 0, 2, 0, 10],
            None,
        );
        assert!(t.contains("  wscale                       4\n"), "{t}");
        assert_eq!(
            json(
                "rsynproxy_mismatch",
                &MISMATCH_NAMES,
                &[4, 0, 2, 0, 10],
                None
            ),
            "{\"file\":\"rsynproxy_mismatch\",\"totals\":{\"wscale\":4,\"mss_larger\":0,\
             \"mss_smaller\":2,\"sack_absent\":0,\"ts_absent\":10}}"
        );
        let out = prometheus(&[
            Sample {
                netns: "r",
                target: "RSYNPROXY",
                total: [1, 0, 1, 0, 0],
                mismatch: Some([4, 0, 2, 0, 10]),
            },
            Sample {
                netns: "r",
                target: "SYNPROXY",
                total: [0; 5],
                mismatch: None,
            },
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5 * 4 + 5 * 3);
        assert_eq!(
            lines[20..23],
            [
                "# HELP rsynproxy_mismatch_wscale_total Backend SYN-ACKs whose window scale differs from the one the client was told (windows translated).",
                "# TYPE rsynproxy_mismatch_wscale_total counter",
                "rsynproxy_mismatch_wscale_total{netns=\"r\",target=\"RSYNPROXY\"} 4",
            ]
        );
        assert_eq!(
            lines[34],
            "rsynproxy_mismatch_ts_absent_total{netns=\"r\",target=\"RSYNPROXY\"} 10"
        );
    }
}
