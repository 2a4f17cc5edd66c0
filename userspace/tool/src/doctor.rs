//! `rsynproxy doctor`: reads a namespace's rule sets (the `*-save` output of iptables-nft and
//! iptables-legacy, IPv4 and IPv6) and sysctls, and names each departure from the recipe
//! with its fix. The analysis here is pure (text in, findings out); main.rs gathers the input.

use std::collections::BTreeSet;
use std::fmt::Write;

/// How bad a finding is: an error breaks the proxy or bypasses it; a warning costs
/// performance or capacity, or may be intended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One thing that is wrong, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// A short stable name for scripts (`tcp-loose`, `no-notrack`, …).
    pub code: &'static str,
    pub problem: String,
    pub fix: String,
}

/// A port set of a `--dport`/`--dports` match: inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports(pub Vec<(u16, u16)>);

impl Ports {
    fn parse(s: &str) -> Option<Ports> {
        let mut v = Vec::new();
        for part in s.split(',') {
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (
                    if a.is_empty() { 0 } else { a.parse().ok()? },
                    if b.is_empty() { 65535 } else { b.parse().ok()? },
                ),
                None => {
                    let p = part.parse().ok()?;
                    (p, p)
                }
            };
            v.push((a.min(b), a.max(b)));
        }
        Some(Ports(v))
    }

    /// Every port of `other` is in `self`.
    fn covers(&self, other: &Ports) -> bool {
        other.0.iter().all(|&(a, b)| {
            // Walk the range through self's ranges (they may overlap or touch).
            let mut next = u32::from(a);
            loop {
                match self
                    .0
                    .iter()
                    .find(|&&(x, y)| u32::from(x) <= next && next <= u32::from(y))
                {
                    Some(&(_, y)) if u32::from(y) >= u32::from(b) => return true,
                    Some(&(_, y)) => next = u32::from(y) + 1,
                    None => return false,
                }
            }
        })
    }

    /// Whether port `p` is in the set.
    pub fn contains(&self, p: u16) -> bool {
        self.0.iter().any(|&(a, b)| a <= p && p <= b)
    }
}

/// A value of a match that may be negated with `!`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Val {
    pub neg: bool,
    pub v: String,
}

/// One rule of a `*-save` dump, with the matches the recipe is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `iptables-nft`, `ip6tables-legacy`, … where it came from.
    pub source: String,
    pub table: String,
    pub chain: String,
    /// 1-based position in its chain.
    pub pos: usize,
    /// The rule as the dump printed it (`-A CHAIN …`).
    pub text: String,
    pub proto: Option<Val>,
    pub iface: Option<Val>,
    pub dst: Option<Val>,
    pub dports: Option<Ports>,
    /// A `--dport` or `--dports` match that is negated or unreadable: coverage unknown.
    pub odd_ports: bool,
    /// `--syn` (printed as `--tcp-flags FIN,SYN,RST,ACK SYN`).
    pub syn: bool,
    /// The states of a `--state`/`--ctstate` match (upper case); None without one.
    pub states: Option<BTreeSet<String>>,
    pub target: String,
    pub target_args: Vec<String>,
}

/// Splits a rule line as iptables-save quotes it (double quotes, backslash escapes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Parses one `*-save` dump (`source` names the tool that printed it).
pub fn parse_save(source: &str, text: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut table = String::new();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
            counts.clear();
            continue;
        }
        let Some(rest) = line.strip_prefix("-A ") else {
            continue;
        };
        let w = words(rest);
        let Some(chain) = w.first().cloned() else {
            continue;
        };
        let pos = match counts.iter_mut().find(|(c, _)| *c == chain) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                counts.push((chain.clone(), 1));
                1
            }
        };
        let mut r = Rule {
            source: source.to_string(),
            table: table.clone(),
            chain,
            pos,
            text: line.to_string(),
            proto: None,
            iface: None,
            dst: None,
            dports: None,
            odd_ports: false,
            syn: false,
            states: None,
            target: String::new(),
            target_args: Vec::new(),
        };
        let mut i = 1;
        let mut neg = false;
        while i < w.len() {
            let arg = |k: usize| w.get(k).cloned().unwrap_or_default();
            let val = |k: usize, neg: bool| Some(Val { neg, v: arg(k) });
            let mut took = 2;
            match w[i].as_str() {
                "!" => {
                    neg = true;
                    i += 1;
                    continue;
                }
                "-p" | "--protocol" => r.proto = val(i + 1, neg),
                "-i" | "--in-interface" => r.iface = val(i + 1, neg),
                "-d" | "--destination" => r.dst = val(i + 1, neg),
                "--dport" | "--dports" | "--destination-port" | "--destination-ports" => {
                    match Ports::parse(&arg(i + 1)) {
                        Some(p) if !neg => r.dports = Some(p),
                        _ => r.odd_ports = true,
                    }
                }
                "--syn" => {
                    r.syn = !neg;
                    took = 1;
                }
                "--tcp-flags" => {
                    let mask: BTreeSet<String> = arg(i + 1).split(',').map(String::from).collect();
                    let comp = arg(i + 2);
                    r.syn = !neg
                        && comp == "SYN"
                        && ["SYN", "RST", "ACK"].iter().all(|f| mask.contains(*f));
                    took = 3;
                }
                "--state" | "--ctstate" if !neg => {
                    r.states = Some(arg(i + 1).split(',').map(str::to_uppercase).collect());
                }
                "-j" | "--jump" | "-g" | "--goto" => {
                    r.target = arg(i + 1);
                    r.target_args = w[(i + 2).min(w.len())..].to_vec();
                    break;
                }
                // Other matches and their arguments: skip an option and its values.
                _ => {
                    took = 1;
                    while i + took < w.len() && !w[i + took].starts_with('-') && w[i + took] != "!"
                    {
                        took += 1;
                    }
                }
            }
            neg = false;
            i += took;
        }
        rules.push(r);
    }
    rules
}

/// Whether the interface match `outer` takes every packet `inner` takes (`eth+` wildcards).
fn iface_covers(outer: &Option<Val>, inner: &Option<Val>) -> bool {
    match (outer, inner) {
        (None, _) => true,
        (Some(o), Some(i)) if o.neg == i.neg => match o.v.strip_suffix('+') {
            Some(prefix) if !o.neg => i.v.trim_end_matches('+').starts_with(prefix),
            _ => o.v == i.v,
        },
        _ => false,
    }
}

fn val_covers(outer: &Option<Val>, inner: &Option<Val>) -> bool {
    match (outer, inner) {
        (None, _) => true,
        (Some(o), Some(i)) => o == i,
        _ => false,
    }
}

/// Whether rule `outer`'s interface, destination and ports take every packet of `inner`'s.
fn covers(outer: &Rule, inner: &Rule) -> bool {
    let ports = match (&outer.dports, &inner.dports) {
        (_, _) if outer.odd_ports => false,
        (None, _) => true,
        (Some(o), Some(i)) => o.covers(i),
        (Some(_), None) => false,
    };
    ports
        && iface_covers(&outer.iface, &inner.iface)
        && val_covers(&outer.dst, &inner.dst)
        && val_covers(&outer.proto, &inner.proto)
}

/// Whether the packets of two rules can meet (used for conflicts, so generous).
fn overlaps(a: &Rule, b: &Rule) -> bool {
    let ports = match (&a.dports, &b.dports) {
        (Some(x), Some(y)) => {
            x.0.iter()
                .any(|&(s, e)| y.0.iter().any(|&(s2, e2)| s <= e2 && s2 <= e))
        }
        _ => true,
    };
    let iface = match (&a.iface, &b.iface) {
        (Some(x), Some(y)) if !x.neg && !y.neg => {
            iface_covers(&a.iface, &b.iface) || iface_covers(&b.iface, &a.iface)
        }
        _ => true,
    };
    ports && iface
}

fn is_notrack(r: &Rule) -> bool {
    r.table == "raw"
        && (r.target == "NOTRACK"
            || (r.target == "CT" && r.target_args.iter().any(|a| a == "--notrack")))
}

fn states(r: &Rule) -> String {
    r.states.as_ref().map_or("none".into(), |s| {
        s.iter().cloned().collect::<Vec<_>>().join(",")
    })
}

/// The ports and interface of a rule, as arguments for a suggested rule.
fn match_args(r: &Rule) -> String {
    let mut s = String::new();
    if let Some(i) = &r.iface {
        let _ = write!(s, "{}-i {} ", if i.neg { "! " } else { "" }, i.v);
    }
    if let Some(d) = &r.dst {
        let _ = write!(s, "{}-d {} ", if d.neg { "! " } else { "" }, d.v);
    }
    s.push_str("-p tcp ");
    if let Some(p) = &r.dports {
        let list: Vec<String> =
            p.0.iter()
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}:{b}")
                    }
                })
                .collect();
        if list.len() == 1 {
            let _ = write!(s, "-m tcp --dport {} ", list[0]);
        } else {
            let _ = write!(s, "-m multiport --dports {} ", list.join(","));
        }
    }
    s
}

/// The command for the rule set a rule came from: `iptables-nft`, `ip6tables-legacy`, …
/// (the plain `iptables` may be the other backend).
fn tool(source: &str) -> &str {
    source
}

/// What `doctor` reads besides the rule sets.
#[derive(Clone, Debug, Default)]
pub struct Sysctls {
    /// `net.netfilter.nf_conntrack_tcp_loose` (None: conntrack not loaded).
    pub tcp_loose: Option<u64>,
    pub ct_max: Option<u64>,
    pub ct_buckets: Option<u64>,
    pub ct_count: Option<u64>,
}

/// Every finding for one namespace: `rulesets` are the parsed dumps of every `*-save` tool
/// that printed something.
pub fn diagnose(rules: &[Rule], sys: &Sysctls) -> Vec<Finding> {
    let mut f = Vec::new();
    let proxies: Vec<&Rule> = rules.iter().filter(|r| r.target == "RSYNPROXY").collect();
    if proxies.is_empty() {
        f.push(Finding {
            severity: Severity::Error,
            code: "no-rule",
            problem: "no RSYNPROXY rule in this namespace (iptables-nft and iptables-legacy, IPv4 and IPv6)".into(),
            fix: "add the rule set `rsynproxy probe BACKEND:PORT` prints".into(),
        });
    }
    if !proxies.is_empty() && sys.tcp_loose != Some(0) {
        f.push(Finding {
            severity: Severity::Error,
            code: "tcp-loose",
            problem: match sys.tcp_loose {
                Some(v) => format!("net.netfilter.nf_conntrack_tcp_loose is {v}: conntrack adopts the client's handshake ACK as a new connection and the proxy never sees it (the setting is per namespace; persist it in /etc/sysctl.d)"),
                None => "net.netfilter.nf_conntrack_tcp_loose is not readable (is nf_conntrack loaded?)".into(),
            },
            fix: "sysctl -w net.netfilter.nf_conntrack_tcp_loose=0".into(),
        });
    }
    for p in &proxies {
        let at = format!(
            "{} {} rule {} of {} ({})",
            p.source, p.table, p.pos, p.chain, p.text
        );
        let ipt = tool(&p.source);
        let m = match_args(p);
        // The state match.
        let want: BTreeSet<String> = ["INVALID", "UNTRACKED"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if p.states.as_ref() != Some(&want) {
            let problem = match &p.states {
                None => {
                    "has no state match: the target sees every packet, established connections' too"
                        .to_string()
                }
                Some(s) if !s.contains("UNTRACKED") => format!(
                    "matches states {}: the untracked SYNs never reach it",
                    states(p)
                ),
                Some(s) if !s.contains("INVALID") => format!(
                    "matches states {}: the client's handshake ACK (INVALID) never reaches it",
                    states(p)
                ),
                Some(_) => format!(
                    "matches states {}: only INVALID,UNTRACKED belong to the proxy",
                    states(p)
                ),
            };
            f.push(Finding {
                severity: Severity::Error,
                code: "state-match",
                problem: format!("{at} {problem}"),
                fix: format!(
                    "{ipt} -R {} {} {m}-m state --state INVALID,UNTRACKED -j RSYNPROXY {}",
                    p.chain,
                    p.pos,
                    p.target_args.join(" ")
                ),
            });
        }
        // The raw-table rule that leaves the SYNs untracked.
        let notrack: Vec<&Rule> = rules
            .iter()
            .filter(|r| r.source == p.source && is_notrack(r) && r.chain == "PREROUTING")
            .collect();
        let fix_notrack = format!("{ipt} -t raw -I PREROUTING {m}--syn -j CT --notrack");
        if let Some(n) = notrack.iter().find(|n| !n.syn && overlaps(n, p)) {
            f.push(Finding {
                severity: Severity::Error,
                code: "notrack-not-syn",
                problem: format!("{} raw rule {} of PREROUTING ({}) leaves every packet untracked, not only SYNs: the proxied connections cannot be tracked", n.source, n.pos, n.text),
                fix: format!("{ipt} -t raw -R PREROUTING {} {}--syn -j CT --notrack", n.pos, match_args(n)),
            });
        } else if !notrack.iter().any(|n| n.syn && covers(n, p)) {
            f.push(Finding {
                severity: Severity::Error,
                code: "no-notrack",
                problem: format!("{at}: no raw-table `--syn -j CT --notrack` rule covers its interface and ports, so its SYNs are tracked (NEW) and bypass it"),
                fix: fix_notrack,
            });
        }
        // The INVALID drop after it.
        let drop = |r: &&Rule| {
            r.source == p.source
                && r.table == p.table
                && r.chain == p.chain
                && (r.target == "DROP" || r.target == "REJECT")
                && r.states
                    .as_ref()
                    .is_some_and(|s| s.len() == 1 && s.contains("INVALID"))
                && covers(r, p)
        };
        let fix_drop = format!(
            "{ipt} -I {} {} {m}-m state --state INVALID -j DROP",
            p.chain,
            p.pos + 1
        );
        if let Some(d) = rules.iter().filter(drop).find(|d| d.pos < p.pos) {
            f.push(Finding {
                severity: Severity::Error,
                code: "drop-before",
                problem: format!("{at}: the INVALID drop at rule {} comes first ({}), so the client's handshake ACK never reaches the proxy", d.pos, d.text),
                // After the delete the proxy rule is one up: the drop goes right after it.
                fix: format!(
                    "{ipt} -D {} {}; {ipt} -I {} {} {m}-m state --state INVALID -j DROP",
                    p.chain, d.pos, p.chain, p.pos
                ),
            });
        } else if !rules.iter().filter(drop).any(|d| d.pos > p.pos) {
            f.push(Finding {
                severity: Severity::Error,
                code: "no-drop",
                problem: format!("{at}: no `--state INVALID -j DROP` follows it, so the INVALID packets it does not consume (out-of-window segments, stray ACKs) are accepted"),
                fix: fix_drop,
            });
        }
        // The in-tree target on the same traffic.
        for c in rules.iter().filter(|r| {
            r.target == "SYNPROXY" && r.source == p.source && r.chain == p.chain && overlaps(r, p)
        }) {
            f.push(Finding {
                severity: Severity::Warning,
                code: "synproxy-too",
                problem: format!("{at} and the in-tree SYNPROXY ({} rule {} of {}: {}) take the same traffic: the first one answers, the other counts nothing; keep one of them", c.table, c.pos, c.chain, c.text),
                fix: format!("{ipt} -t {} -D {} {}", c.table, c.chain, c.pos),
            });
        }
    }
    // Port forwarding: the backend SYN leaves through OUTPUT, which a PREROUTING DNAT misses.
    for d in rules
        .iter()
        .filter(|r| r.table == "nat" && r.chain == "PREROUTING" && r.target == "DNAT")
    {
        let to = d
            .target_args
            .windows(2)
            .find(|w| w[0] == "--to-destination")
            .map(|w| w[1].clone());
        let proxied = proxies
            .iter()
            .any(|p| p.source == d.source && overlaps(p, d));
        let in_output = rules.iter().any(|o| {
            o.source == d.source
                && o.table == "nat"
                && o.chain == "OUTPUT"
                && o.target == "DNAT"
                && o.target_args
                    .windows(2)
                    .any(|w| w[0] == "--to-destination" && Some(&w[1]) == to.as_ref())
                && o.dports == d.dports
        });
        if proxied && !in_output {
            let mut m = String::new();
            if let Some(x) = &d.dst {
                let _ = write!(m, "{}-d {} ", if x.neg { "! " } else { "" }, x.v);
            }
            let ports = d.dports.as_ref().map(|p| {
                match_args(&Rule {
                    dports: Some(p.clone()),
                    iface: None,
                    dst: None,
                    ..d.clone()
                })
            });
            f.push(Finding {
                severity: Severity::Error,
                code: "dnat-prerouting-only",
                problem: format!("{} nat rule {} of PREROUTING ({}) forwards a proxied port, but the proxy's backend SYN leaves through OUTPUT, where no DNAT applies: the backend never gets it (the RSYNPROXY rule belongs in INPUT, for the router's address)", d.source, d.pos, d.text),
                fix: format!(
                    "{} -t nat -A OUTPUT {m}{}-j DNAT --to-destination {}",
                    tool(&d.source),
                    ports.unwrap_or_else(|| "-p tcp ".into()),
                    to.unwrap_or_default()
                ),
            });
        }
    }
    if let (Some(max), Some(buckets)) = (sys.ct_max, sys.ct_buckets) {
        if buckets > 0 && max > 8 * buckets {
            f.push(Finding {
                severity: Severity::Warning,
                code: "ct-hash",
                problem: format!("nf_conntrack_max {max} is more than 8 times nf_conntrack_buckets {buckets}: long hash chains when the table fills"),
                fix: format!("echo {} > /sys/module/nf_conntrack/parameters/hashsize", max.div_ceil(4)),
            });
        }
        if let Some(n) = sys.ct_count {
            if n * 10 > max * 9 {
                f.push(Finding {
                    severity: Severity::Error,
                    code: "ct-full",
                    problem: format!("the conntrack table holds {n} of {max} entries: new connections, proxied ones too, are dropped when it is full"),
                    fix: format!("sysctl -w net.netfilter.nf_conntrack_max={}", max * 2),
                });
            }
        }
    }
    f.sort_by_key(|x| std::cmp::Reverse(x.severity));
    f
}

/// A backend's options against the rule that proxies its port.
pub fn compare_backend(rule: &Rule, b: &crate::probe::Backend, backend: &str) -> Vec<Finding> {
    let a = &rule.target_args;
    let flag = |n: &str| a.iter().any(|x| x == n);
    let num = |n: &str| {
        a.windows(2)
            .find(|w| w[0] == n)
            .and_then(|w| w[1].parse::<u16>().ok())
    };
    let mut diffs = Vec::new();
    if num("--wscale").map(|v| v as u8) != b.wscale {
        diffs.push(format!(
            "window scale: rule {:?}, backend {:?}",
            num("--wscale"),
            b.wscale
        ));
    }
    if num("--mss") != b.mss {
        diffs.push(format!("MSS: rule {:?}, backend {:?}", num("--mss"), b.mss));
    }
    if flag("--sack-perm") && !b.sack_perm {
        diffs.push("SACK: the rule offers it, the backend does not do it".into());
    }
    if flag("--timestamp") && !b.timestamp {
        diffs.push("timestamps: the rule offers them, the backend does not do them".into());
    }
    if diffs.is_empty() {
        return Vec::new();
    }
    vec![Finding {
        severity: Severity::Error,
        code: "backend-options",
        problem: format!(
            "backend {backend} does not match {} rule {} of {}: {}",
            rule.source,
            rule.pos,
            rule.chain,
            diffs.join("; ")
        ),
        fix: format!(
            "{} -R {} {} {}-m state --state INVALID,UNTRACKED -j RSYNPROXY {}",
            tool(&rule.source),
            rule.chain,
            rule.pos,
            match_args(rule),
            b.args().join(" ")
        ),
    }]
}

/// Findings as text, one block each; "no problem found" when there are none.
pub fn report(f: &[Finding]) -> String {
    if f.is_empty() {
        return "no problem found\n".into();
    }
    let mut s = String::new();
    for x in f {
        let sev = match x.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(s, "{sev} [{}]: {}\n  fix: {}", x.code, x.problem, x.fix);
    }
    s
}

fn json_str(v: &str) -> String {
    let mut s = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Findings as one JSON object: `{"netns":…,"findings":[{"severity","code","problem","fix"}…]}`.
pub fn json(netns: &str, f: &[Finding]) -> String {
    let items: Vec<String> = f
        .iter()
        .map(|x| {
            format!(
                "{{\"severity\":{},\"code\":{},\"problem\":{},\"fix\":{}}}",
                json_str(match x.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                }),
                json_str(x.code),
                json_str(&x.problem),
                json_str(&x.fix)
            )
        })
        .collect();
    format!(
        "{{\"netns\":{},\"findings\":[{}]}}",
        json_str(netns),
        items.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 --tcp-flags FIN,SYN,RST,ACK SYN -j CT --notrack";
    const PROXY: &str = "-A INPUT -i eth0 -p tcp -m tcp --dport 80 -m state --state INVALID,UNTRACKED -j RSYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460";
    const DROP: &str = "-A INPUT -i eth0 -p tcp -m tcp --dport 80 -m state --state INVALID -j DROP";

    fn dump(raw: &[&str], filter: &[&str], nat: &[&str]) -> String {
        let mut s =
            String::from("# Generated by iptables-nft-save\n*raw\n:PREROUTING ACCEPT [0:0]\n");
        for r in raw {
            s += &format!("{r}\n");
        }
        s += "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n";
        for r in filter {
            s += &format!("{r}\n");
        }
        s += "COMMIT\n*nat\n";
        for r in nat {
            s += &format!("{r}\n");
        }
        s + "COMMIT\n"
    }

    fn codes(raw: &[&str], filter: &[&str], nat: &[&str], loose: u64) -> Vec<&'static str> {
        let rules = parse_save("iptables-nft", &dump(raw, filter, nat));
        let sys = Sysctls {
            tcp_loose: Some(loose),
            ct_max: Some(262144),
            ct_buckets: Some(65536),
            ct_count: Some(10),
        };
        diagnose(&rules, &sys).iter().map(|f| f.code).collect()
    }

    #[test]
    fn parses_what_the_recipe_is_about() {
        let r = parse_save("iptables-nft", &dump(&[RAW], &[PROXY, DROP], &[]));
        assert_eq!(r.len(), 3);
        assert!(r[0].syn && is_notrack(&r[0]) && r[0].table == "raw");
        let p = &r[1];
        assert_eq!(
            (p.chain.as_str(), p.pos, p.target.as_str()),
            ("INPUT", 1, "RSYNPROXY")
        );
        assert_eq!(
            p.iface,
            Some(Val {
                neg: false,
                v: "eth0".into()
            })
        );
        assert_eq!(p.dports, Some(Ports(vec![(80, 80)])));
        assert_eq!(states(p), "INVALID,UNTRACKED");
        assert_eq!(
            p.target_args.join(" "),
            "--sack-perm --timestamp --wscale 7 --mss 1460"
        );
        assert_eq!(r[2].pos, 2);
        let q = parse_save("x", "*filter\n-A INPUT -m comment --comment \"a \\\"b\\\" -j X\" ! -i lo -p tcp -m multiport --dports 22,8000:8010 -m conntrack --ctstate UNTRACKED,INVALID -j RSYNPROXY\n");
        assert_eq!(
            q[0].iface,
            Some(Val {
                neg: true,
                v: "lo".into()
            })
        );
        assert_eq!(q[0].dports, Some(Ports(vec![(22, 22), (8000, 8010)])));
        assert_eq!(states(&q[0]), "INVALID,UNTRACKED");
        assert_eq!(q[0].target, "RSYNPROXY");
        assert_eq!(words("a \"b c\" d\\ e"), ["a", "b c", "d e"]);
    }

    #[test]
    fn the_recipe_is_clean() {
        assert_eq!(codes(&[RAW], &[PROXY, DROP], &[], 0), Vec::<&str>::new());
        // Wider notrack and drop rules cover it too: any interface, a port range, eth+.
        let raw = "-A PREROUTING -i eth+ -p tcp -m tcp --dport 1:1024 --syn -j NOTRACK";
        let drop = "-A INPUT -m state --state INVALID -j DROP";
        assert_eq!(codes(&[raw], &[PROXY, drop], &[], 0), Vec::<&str>::new());
    }

    #[test]
    fn each_mistake_is_named() {
        assert_eq!(codes(&[RAW], &[PROXY, DROP], &[], 1), ["tcp-loose"]);
        assert_eq!(codes(&[], &[PROXY, DROP], &[], 0), ["no-notrack"]);
        let other_port = RAW.replace("--dport 80", "--dport 81");
        assert_eq!(
            codes(&[&other_port], &[PROXY, DROP], &[], 0),
            ["no-notrack"]
        );
        let other_if = RAW.replace("eth0", "eth1");
        assert_eq!(codes(&[&other_if], &[PROXY, DROP], &[], 0), ["no-notrack"]);
        let all = RAW.replace(" --tcp-flags FIN,SYN,RST,ACK SYN", "");
        assert_eq!(codes(&[&all], &[PROXY, DROP], &[], 0), ["notrack-not-syn"]);
        let untracked = PROXY.replace("INVALID,UNTRACKED", "UNTRACKED");
        assert_eq!(codes(&[RAW], &[&untracked, DROP], &[], 0), ["state-match"]);
        let invalid = PROXY.replace("INVALID,UNTRACKED", "INVALID");
        assert_eq!(codes(&[RAW], &[&invalid, DROP], &[], 0), ["state-match"]);
        let nostate = PROXY.replace("-m state --state INVALID,UNTRACKED ", "");
        assert_eq!(codes(&[RAW], &[&nostate, DROP], &[], 0), ["state-match"]);
        assert_eq!(codes(&[RAW], &[PROXY], &[], 0), ["no-drop"]);
        assert_eq!(codes(&[RAW], &[DROP, PROXY], &[], 0), ["drop-before"]);
        let other_drop = DROP.replace("--dport 80", "--dport 81");
        assert_eq!(codes(&[RAW], &[PROXY, &other_drop], &[], 0), ["no-drop"]);
        let c = PROXY.replace("RSYNPROXY", "SYNPROXY");
        assert_eq!(codes(&[RAW], &[PROXY, DROP, &c], &[], 0), ["synproxy-too"]);
        let fwd = c.replace("-A INPUT", "-A FORWARD");
        assert_eq!(
            codes(&[RAW], &[PROXY, DROP, &fwd], &[], 0),
            Vec::<&str>::new()
        );
        let c81 = c.replace("--dport 80", "--dport 81");
        assert_eq!(
            codes(&[RAW], &[PROXY, DROP, &c81], &[], 0),
            Vec::<&str>::new()
        );
        assert_eq!(codes(&[], &[], &[], 0), ["no-rule"]);
    }

    #[test]
    fn port_sets() {
        let p = Ports::parse("1:10,11:20,30").unwrap();
        assert!(p.covers(&Ports::parse("5:15").unwrap()));
        assert!(p.covers(&Ports::parse("20,30,1").unwrap()));
        assert!(!p.covers(&Ports::parse("5:25").unwrap()));
        assert!(!p.covers(&Ports::parse("31").unwrap()));
        assert!(!Ports::parse("1:10")
            .unwrap()
            .covers(&Ports::parse("5:15").unwrap()));
        assert!(Ports::parse(":")
            .unwrap()
            .covers(&Ports::parse("0:65535").unwrap()));
        assert!(p.contains(1) && p.contains(15) && p.contains(30));
        assert!(!p.contains(0) && !p.contains(25) && !p.contains(31));
        assert_eq!(Ports::parse("9:3"), Some(Ports(vec![(3, 9)])));
        assert_eq!(Ports::parse("x"), None);
    }

    #[test]
    fn syn_and_negations_as_parsed() {
        let one = |rule: &str| parse_save("x", &format!("*raw\n-A PREROUTING {rule}\n")).remove(0);
        assert!(one("-p tcp --tcp-flags SYN,RST,ACK SYN -j CT --notrack").syn);
        assert!(!one("-p tcp --tcp-flags FIN,SYN,RST,ACK SYN,ACK -j CT --notrack").syn);
        assert!(!one("-p tcp --tcp-flags FIN,SYN SYN -j CT --notrack").syn);
        assert!(!one("-p tcp ! --syn -j CT --notrack").syn);
        assert!(!one("-p tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j CT --notrack").syn);
        let r = one(
            "! -p udp -m tcp ! --dport 22 -m foo --bar 1 2 ! --baz -d 10.0.0.1 -j CT --notrack",
        );
        assert_eq!(
            r.proto,
            Some(Val {
                neg: true,
                v: "udp".into()
            })
        );
        assert!(r.odd_ports && r.dports.is_none());
        assert_eq!(
            r.dst,
            Some(Val {
                neg: false,
                v: "10.0.0.1".into()
            })
        );
        assert_eq!(
            (r.target.as_str(), r.target_args.join(" ")),
            ("CT", "--notrack".into())
        );
        let r = one("-m state ! --state INVALID -j DROP");
        assert_eq!(r.states, None);
        assert!(is_notrack(&one("-j NOTRACK")));
        assert!(!is_notrack(&one("-j CT --zone 1")));
        assert!(!is_notrack(
            &parse_save("x", "*filter\n-A INPUT -j NOTRACK\n")[0]
        ));
    }

    #[test]
    fn coverage_by_interface_address_protocol_ports() {
        let notrack = |m: &str| format!("-A PREROUTING {m} --syn -j CT --notrack");
        for (raw, want) in [
            ("-i eth0 -p tcp", Vec::<&str>::new()),
            ("-p tcp", vec![]),
            ("-i eth+ -p tcp", vec![]),
            ("-i veth+ -p tcp", vec!["no-notrack"]),
            ("! -i eth0 -p tcp", vec!["no-notrack"]),
            ("! -i eth1 -p tcp", vec!["no-notrack"]),
            ("-i eth0 -p udp", vec!["no-notrack"]),
            ("-i eth0 -p tcp -m tcp ! --dport 22", vec!["no-notrack"]),
            ("-i eth0 -p tcp -m multiport --dports 79:81", vec![]),
            ("-i eth0 -d 10.0.0.1 -p tcp", vec!["no-notrack"]),
        ] {
            assert_eq!(
                codes(&[&notrack(raw)], &[PROXY, DROP], &[], 0),
                want,
                "{raw}"
            );
        }
        // The proxy rule's own destination is covered by the same one, not another.
        let proxy = PROXY.replace("-i eth0", "-i eth0 -d 10.0.0.1/32");
        let raw = notrack("-i eth0 -d 10.0.0.1/32 -p tcp");
        assert_eq!(codes(&[&raw], &[&proxy, DROP], &[], 0), Vec::<&str>::new());
        let raw2 = notrack("-i eth0 -d 10.0.0.2/32 -p tcp");
        assert_eq!(codes(&[&raw2], &[&proxy, DROP], &[], 0), ["no-notrack"]);
        // SYNPROXY elsewhere is no conflict; on a wildcard or negated interface it may be.
        let c = PROXY.replace("RSYNPROXY", "SYNPROXY");
        for (m, want) in [
            ("-i eth1", Vec::<&str>::new()),
            ("-i eth+", vec!["synproxy-too"]),
            ("! -i eth1", vec!["synproxy-too"]),
            ("! -i eth0", vec!["synproxy-too"]),
        ] {
            let rule = c.replace("-i eth0", m);
            assert_eq!(codes(&[RAW], &[PROXY, DROP, &rule], &[], 0), want, "{m}");
        }
    }

    #[test]
    fn port_forwarding_needs_the_dnat_in_output() {
        let pre = "-A PREROUTING -d 192.0.2.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:8080";
        let out = pre.replace("PREROUTING", "OUTPUT");
        assert_eq!(
            codes(&[RAW], &[PROXY, DROP], &[pre], 0),
            ["dnat-prerouting-only"]
        );
        assert_eq!(
            codes(&[RAW], &[PROXY, DROP], &[pre, &out], 0),
            Vec::<&str>::new()
        );
        let rules = parse_save("iptables-nft", &dump(&[RAW], &[PROXY, DROP], &[pre]));
        let f = diagnose(
            &rules,
            &Sysctls {
                tcp_loose: Some(0),
                ..Default::default()
            },
        );
        assert_eq!(
            f[0].fix,
            "iptables-nft -t nat -A OUTPUT -d 192.0.2.1/32 -p tcp -m tcp --dport 80 -j DNAT \
             --to-destination 10.0.0.2:8080"
        );
        // A port nothing proxies is not the proxy's business.
        let other = pre.replace("--dport 80", "--dport 443");
        assert_eq!(
            codes(&[RAW], &[PROXY, DROP], &[&other], 0),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn conntrack_sizing() {
        let rules = parse_save("iptables-nft", &dump(&[RAW], &[PROXY, DROP], &[]));
        let mut sys = Sysctls {
            tcp_loose: Some(0),
            ct_max: Some(1 << 20),
            ct_buckets: Some(1 << 16),
            ct_count: Some(0),
        };
        let f = diagnose(&rules, &sys);
        assert_eq!(f.iter().map(|f| f.code).collect::<Vec<_>>(), ["ct-hash"]);
        assert_eq!(
            f[0].fix,
            "echo 262144 > /sys/module/nf_conntrack/parameters/hashsize"
        );
        sys.ct_buckets = Some(1 << 17);
        sys.ct_count = Some(950_000);
        let f = diagnose(&rules, &sys);
        assert_eq!(f.iter().map(|f| f.code).collect::<Vec<_>>(), ["ct-full"]);
    }

    #[test]
    fn fixes_are_commands_for_the_right_tool_and_place() {
        let rules = parse_save("ip6tables-legacy", &dump(&[], &[PROXY], &[]));
        let f = diagnose(
            &rules,
            &Sysctls {
                tcp_loose: Some(0),
                ..Default::default()
            },
        );
        let fix = |c: &str| f.iter().find(|x| x.code == c).unwrap().fix.clone();
        assert_eq!(
            fix("no-notrack"),
            "ip6tables-legacy -t raw -I PREROUTING -i eth0 -p tcp -m tcp --dport 80 --syn -j CT --notrack"
        );
        assert_eq!(fix("no-drop"), "ip6tables-legacy -I INPUT 2 -i eth0 -p tcp -m tcp --dport 80 -m state --state INVALID -j DROP");
        // Errors first.
        let r = report(&f);
        assert!(
            r.starts_with("error [no-notrack]: ip6tables-legacy filter rule 1 of INPUT"),
            "{r}"
        );
        assert_eq!(report(&[]), "no problem found\n");
        let rules = parse_save("iptables-nft", &dump(&[RAW], &[DROP, PROXY], &[]));
        let f = diagnose(
            &rules,
            &Sysctls {
                tcp_loose: Some(0),
                ..Default::default()
            },
        );
        assert_eq!(f[0].fix, "iptables-nft -D INPUT 1; iptables-nft -I INPUT 2 -i eth0 -p tcp -m tcp --dport 80 -m state --state INVALID -j DROP");
    }

    #[test]
    fn backend_comparison() {
        let rules = parse_save("iptables-nft", &dump(&[RAW], &[PROXY, DROP], &[]));
        let p = rules.iter().find(|r| r.target == "RSYNPROXY").unwrap();
        let same = crate::probe::Backend {
            mss: Some(1460),
            wscale: Some(7),
            sack_perm: true,
            timestamp: true,
        };
        assert!(compare_backend(p, &same, "10.0.0.2:80").is_empty());
        let b = crate::probe::Backend {
            wscale: Some(2),
            ..same
        };
        let f = compare_backend(p, &b, "10.0.0.2:80");
        assert_eq!(f[0].problem, "backend 10.0.0.2:80 does not match iptables-nft rule 1 of INPUT: window scale: rule Some(7), backend Some(2)");
        assert_eq!(
            f[0].fix,
            "iptables-nft -R INPUT 1 -i eth0 -p tcp -m tcp --dport 80 -m state --state INVALID,UNTRACKED -j RSYNPROXY --sack-perm --timestamp --wscale 2 --mss 1460"
        );
        let b = crate::probe::Backend {
            timestamp: false,
            sack_perm: false,
            ..same
        };
        assert_eq!(compare_backend(p, &b, "x").len(), 1);
    }

    #[test]
    fn json_escapes() {
        let f = Finding {
            severity: Severity::Warning,
            code: "x",
            problem: "a \"q\"\n".into(),
            fix: "b\\".into(),
        };
        assert_eq!(
            json("web", &[f]),
            "{\"netns\":\"web\",\"findings\":[{\"severity\":\"warning\",\"code\":\"x\",\"problem\":\"a \\\"q\\\"\\u000a\",\"fix\":\"b\\\\\"}]}"
        );
    }
}
