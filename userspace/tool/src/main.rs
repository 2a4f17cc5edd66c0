//! `rsynproxy`: the administrator's companion to the RSYNPROXY target.
//!
//! - `rsynproxy probe HOST:PORT`: the backend's SYN-ACK options, the matching
//!   `--mss/--wscale/--sack-perm/--timestamp` and the complete rule set.
//! - `rsynproxy stats`: the counters of `/proc/net/stat/rsynproxy` (and of the in-tree
//!   `synproxy` when present), summed over CPUs, with per-second rates.
//! - `rsynproxy doctor`: the namespace's rule sets and sysctls checked against the recipe.
//! - `rsynproxy completions SHELL`: a completion script for bash, zsh or fish.

mod doctor;
mod probe;
mod stats;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "rsynproxy",
    version,
    about = "Probe backends for RSYNPROXY and read its counters"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Connect to a backend, read its SYN-ACK's TCP options, print the matching rule set
    Probe {
        /// The backend, HOST:PORT ([ADDR]:PORT for IPv6)
        target: String,
        /// Interface the protected traffic arrives on
        #[arg(long, default_value = "eth0")]
        iface: String,
        /// Port to protect (default: the probed port)
        #[arg(long)]
        port: Option<u16>,
        /// INPUT protects this host, FORWARD hosts behind it
        #[arg(long, default_value = "INPUT", value_parser = ["INPUT", "FORWARD"])]
        chain: String,
        /// Seconds to wait for the backend
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
    },
    /// Show the counters, summed over CPUs; with --interval also per-second rates
    Stats {
        /// Read the counters of this network namespace (ip netns name)
        #[arg(long)]
        netns: Option<String>,
        /// Repeat every S seconds, with rates
        #[arg(long)]
        interval: Option<f64>,
        /// Stop after N readings (with --interval)
        #[arg(long)]
        count: Option<u64>,
        /// One JSON object per file and reading
        #[arg(long)]
        json: bool,
        /// The Prometheus text format (node_exporter's textfile collector), one reading
        #[arg(long, conflicts_with_all = ["json", "interval", "count"])]
        prometheus: bool,
        /// With --prometheus: this namespace and every one in /run/netns (label netns)
        #[arg(long, requires = "prometheus", conflicts_with = "netns")]
        all_netns: bool,
    },
    /// Check this namespace's SYN proxy set-up against the recipe, say what to fix
    /// (exit status: 0 nothing found, 3 warnings only, 4 errors; 1 could not check)
    Doctor {
        /// Check this network namespace (ip netns name)
        #[arg(long)]
        netns: Option<String>,
        /// One JSON object instead of text
        #[arg(long)]
        json: bool,
        /// Also probe this backend and compare its options with the rule for its port
        /// (repeatable)
        #[arg(long, value_name = "HOST:PORT")]
        probe: Vec<String>,
        /// Seconds to wait for each probed backend
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
    },
    /// Print a completion script for SHELL to standard output
    Completions {
        /// The shell the script is for
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// The shells `completions` writes scripts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl From<CompletionShell> for clap_complete::Shell {
    fn from(s: CompletionShell) -> Self {
        match s {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }
    }
}

fn main() -> ExitCode {
    let cmd = Cli::parse().cmd;
    if let Cmd::Doctor {
        netns,
        json,
        probe,
        timeout,
    } = &cmd
    {
        return match run_doctor(netns.as_deref(), *json, probe, *timeout) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("rsynproxy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let res = match cmd {
        Cmd::Probe {
            target,
            iface,
            port,
            chain,
            timeout,
        } => run_probe(&target, &iface, port, &chain, timeout),
        Cmd::Stats {
            netns,
            interval,
            count,
            json,
            prometheus: false,
            ..
        } => run_stats(netns.as_deref(), interval, count, json),
        Cmd::Stats {
            netns, all_netns, ..
        } => run_prometheus(netns.as_deref(), all_netns),
        Cmd::Doctor { .. } => unreachable!("handled above"),
        Cmd::Completions { shell } => std::io::stdout()
            .write_all(&completions(shell))
            .map_err(|e| format!("standard output: {e}")),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rsynproxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The completion script for `shell`, generated from the command-line definition.
fn completions(shell: CompletionShell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(
        clap_complete::Shell::from(shell),
        &mut Cli::command(),
        "rsynproxy",
        &mut out,
    );
    out
}

fn resolve(target: &str) -> Result<SocketAddr, String> {
    let bad = |why: String| {
        format!("bad backend address {target:?}: {why} (expected HOST:PORT or [ADDR]:PORT)")
    };
    target
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

fn run_probe(
    target: &str,
    iface: &str,
    port: Option<u16>,
    chain: &str,
    timeout: f64,
) -> Result<(), String> {
    let peer = resolve(target)?;
    let timeout = Duration::try_from_secs_f64(timeout).map_err(|e| format!("--timeout: {e}"))?;
    let b = probe::probe(&peer, timeout)?;
    let yes = |v: bool| if v { "yes" } else { "no" };
    println!("backend {peer} SYN-ACK:");
    println!(
        "  mss           {}",
        b.mss.map_or("none".into(), |m| m.to_string())
    );
    println!(
        "  wscale        {}",
        b.wscale.map_or("none".into(), |w| w.to_string())
    );
    println!("  sack-perm     {}", yes(b.sack_perm));
    println!("  timestamps    {}", yes(b.timestamp));
    for n in b.notes() {
        println!("note: {n}");
    }
    let args = b.args();
    println!("\nRSYNPROXY arguments:\n  {}", args.join(" "));
    println!("\nrule set:");
    for r in probe::rules(
        peer.is_ipv6(),
        iface,
        port.unwrap_or(peer.port()),
        chain,
        &args,
    ) {
        println!("  {r}");
    }
    Ok(())
}

fn enter_netns(name: &str) -> Result<(), String> {
    let path = format!("/run/netns/{name}");
    let f = std::fs::File::open(&path)
        .map_err(|e| format!("network namespace {name:?}: {path}: {e}"))?;
    // SAFETY: a valid fd; CLONE_NEWNET switches this (single-threaded) process's namespace.
    if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns {name:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Reads and sums one stat file; `None` if it does not exist.
fn read(file: &str) -> Result<Option<[u64; 5]>, String> {
    read_with(file, stats::parse)
}

/// The mismatch counters (`/proc/net/stat/rsynproxy_mismatch`); `None` without the file (a
/// module from before it existed).
fn read_mismatch() -> Result<Option<[u64; 5]>, String> {
    read_with(MISMATCH_FILE, stats::parse_mismatch)
}

const MISMATCH_FILE: &str = "rsynproxy_mismatch";

fn read_with(
    file: &str,
    parse: fn(&str) -> Result<[u64; 5], String>,
) -> Result<Option<[u64; 5]>, String> {
    let path = format!("/proc/net/stat/{file}");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).map(Some).map_err(|e| format!("{path}: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// A number from a /proc file, None if it does not exist.
fn proc_num(path: &str) -> Result<Option<u64>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| format!("{path}: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// The `*-save` dumps of this namespace: every tool that is installed, both families.
fn save_dumps() -> Result<Vec<doctor::Rule>, String> {
    let mut rules = Vec::new();
    for tool in [
        "iptables-nft",
        "ip6tables-nft",
        "iptables-legacy",
        "ip6tables-legacy",
    ] {
        let cmd = format!("{tool}-save");
        let out = match std::process::Command::new(&cmd).output() {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("{cmd}: {e}")),
        };
        if !out.status.success() {
            return Err(format!(
                "{cmd} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        rules.extend(doctor::parse_save(
            tool,
            &String::from_utf8_lossy(&out.stdout),
        ));
    }
    Ok(rules)
}

fn run_doctor(
    netns: Option<&str>,
    json: bool,
    probes: &[String],
    timeout: f64,
) -> Result<u8, String> {
    if let Some(ns) = netns {
        enter_netns(ns)?;
    }
    let timeout = Duration::try_from_secs_f64(timeout).map_err(|e| format!("--timeout: {e}"))?;
    let rules = save_dumps()?;
    let nf = "/proc/sys/net/netfilter";
    let sys = doctor::Sysctls {
        tcp_loose: proc_num(&format!("{nf}/nf_conntrack_tcp_loose"))?,
        ct_max: proc_num(&format!("{nf}/nf_conntrack_max"))?,
        ct_buckets: proc_num(&format!("{nf}/nf_conntrack_buckets"))?,
        ct_count: proc_num(&format!("{nf}/nf_conntrack_count"))?,
    };
    let mut findings = doctor::diagnose(&rules, &sys);
    for target in probes {
        let peer = resolve(target)?;
        let b = probe::probe(&peer, timeout)?;
        let matching: Vec<&doctor::Rule> = rules
            .iter()
            .filter(|r| r.target == "RSYNPROXY" && r.source.starts_with("ip6") == peer.is_ipv6())
            .filter(|r| match &r.dports {
                Some(p) => p.contains(peer.port()),
                None => true,
            })
            .collect();
        if matching.is_empty() {
            findings.push(doctor::Finding {
                severity: doctor::Severity::Warning,
                code: "probe-no-rule",
                problem: format!(
                    "no RSYNPROXY rule covers port {} of the probed backend {peer}",
                    peer.port()
                ),
                fix: "compare by hand: rsynproxy probe HOST:PORT".into(),
            });
        }
        for r in matching {
            findings.extend(doctor::compare_backend(r, &b, &peer.to_string()));
        }
    }
    findings.sort_by_key(|x| std::cmp::Reverse(x.severity));
    let counters = read("rsynproxy")?;
    if json {
        println!("{}", doctor::json(netns.unwrap_or(""), &findings));
    } else {
        match counters {
            Some(c) => println!(
                "rsynproxy module: loaded; this namespace counted {} SYNs, {} valid and {} invalid cookies",
                c[0], c[2], c[1]
            ),
            None => println!("rsynproxy module: not loaded"),
        }
        print!("{}", doctor::report(&findings));
    }
    Ok(match findings.first().map(|f| f.severity) {
        None => 0,
        Some(doctor::Severity::Warning) => 3,
        Some(doctor::Severity::Error) => 4,
    })
}

/// The stat files and the target each belongs to.
const FILES: [(&str, &str); 2] = [("rsynproxy", "RSYNPROXY"), ("synproxy", "SYNPROXY")];

/// One namespace's reading of one target: namespace, target, totals, mismatch counters.
type Row = (String, &'static str, [u64; 5], Option<[u64; 5]>);

/// Reads both stat files of the current namespace (and RSYNPROXY's mismatch counters) into
/// `out`, labelled `netns`.
fn collect(netns: &str, out: &mut Vec<Row>) -> Result<(), String> {
    for (file, target) in FILES {
        let mismatch = if file == "rsynproxy" {
            read_mismatch()?
        } else {
            None
        };
        match read(file)? {
            Some(total) => out.push((netns.to_string(), target, total, mismatch)),
            None if file == "rsynproxy" => {
                return Err(format!(
                    "no /proc/net/stat/rsynproxy in network namespace {netns:?}: is the rsynproxy module loaded?"
                ))
            }
            None => {}
        }
    }
    Ok(())
}

/// The inode of a namespace file: equal inodes are the same namespace.
fn ns_inode(path: &str) -> Result<u64, String> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("{path}: {e}"))
}

fn run_prometheus(netns: Option<&str>, all: bool) -> Result<(), String> {
    let mut rows = Vec::new();
    if let Some(ns) = netns {
        enter_netns(ns)?;
        collect(ns, &mut rows)?;
    } else if !all {
        collect("", &mut rows)?;
    } else {
        let own = std::fs::File::open("/proc/self/ns/net")
            .map_err(|e| format!("/proc/self/ns/net: {e}"))?;
        let own_ino = ns_inode("/proc/self/ns/net")?;
        let mut names: Vec<String> = match std::fs::read_dir("/run/netns") {
            Ok(d) => d
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("/run/netns: {e}")),
        };
        names.sort();
        // This process's own namespace carries its /run/netns name if it has one.
        let mut own_name = String::new();
        for n in &names {
            if ns_inode(&format!("/run/netns/{n}"))? == own_ino {
                own_name.clone_from(n);
                break;
            }
        }
        collect(&own_name, &mut rows)?;
        for n in names.iter().filter(|n| **n != own_name) {
            enter_netns(n)?;
            let r = collect(n, &mut rows);
            // SAFETY: `own` is an open namespace fd; this process is single-threaded.
            if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&own), libc::CLONE_NEWNET) }
                != 0
            {
                return Err(format!(
                    "setns back to the original namespace: {}",
                    std::io::Error::last_os_error()
                ));
            }
            r?;
        }
    }
    let samples: Vec<stats::Sample<'_>> = rows
        .iter()
        .map(|(netns, target, total, mismatch)| stats::Sample {
            netns,
            target,
            total: *total,
            mismatch: *mismatch,
        })
        .collect();
    print!("{}", stats::prometheus(&samples));
    Ok(())
}

fn run_stats(
    netns: Option<&str>,
    interval: Option<f64>,
    count: Option<u64>,
    json: bool,
) -> Result<(), String> {
    if let Some(ns) = netns {
        enter_netns(ns)?;
    }
    let files = ["rsynproxy", "synproxy", MISMATCH_FILE];
    let mut prev: [Option<[u64; 5]>; 3] = [None, None, None];
    let mut t_prev = Instant::now();
    let mut n = 0u64;
    loop {
        let now = Instant::now();
        let cur = [read(files[0])?, read(files[1])?, read_mismatch()?];
        if cur[0].is_none() {
            return Err("no /proc/net/stat/rsynproxy: is the rsynproxy module loaded?".into());
        }
        let secs = now.duration_since(t_prev).as_secs_f64();
        for (i, file) in files.iter().enumerate() {
            let Some(total) = cur[i] else { continue };
            let rate = prev[i].map(|p| stats::rates(&p, &total, secs));
            let names = if *file == MISMATCH_FILE {
                &stats::MISMATCH_NAMES
            } else {
                &stats::NAMES
            };
            if json {
                println!("{}", stats::json(file, names, &total, rate.as_ref()));
            } else {
                print!("{}", stats::table(file, names, &total, rate.as_ref()));
            }
        }
        n += 1;
        let Some(iv) = interval else { return Ok(()) };
        if count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        prev = cur;
        t_prev = now;
        std::thread::sleep(
            Duration::try_from_secs_f64(iv).map_err(|e| format!("--interval: {e}"))?,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completion_scripts_know_the_subcommands_and_options() {
        for (shell, marker) in [
            (CompletionShell::Bash, "complete -F _rsynproxy"),
            (CompletionShell::Zsh, "#compdef rsynproxy"),
            (CompletionShell::Fish, "complete -c rsynproxy"),
        ] {
            let script = String::from_utf8(completions(shell)).unwrap();
            assert!(script.contains(marker), "{shell:?}: no {marker:?}");
            for word in ["probe", "stats", "completions", "interval", "chain"] {
                assert!(script.contains(word), "{shell:?}: no {word:?}");
            }
        }
        let bash = String::from_utf8(completions(CompletionShell::Bash)).unwrap();
        // The fixed choices are offered as values.
        assert!(bash.contains("INPUT FORWARD"), "{bash}");
        assert!(bash.contains("bash zsh fish"), "{bash}");
    }

    #[test]
    fn completions_takes_one_of_three_shells() {
        let parse = |sh: &str| Cli::try_parse_from(["rsynproxy", "completions", sh]);
        assert!(matches!(
            parse("zsh").map(|c| c.cmd),
            Ok(Cmd::Completions {
                shell: CompletionShell::Zsh
            })
        ));
        for bad in ["tcsh", "powershell", "Bash"] {
            let e = parse(bad).err().expect(bad);
            assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue, "{bad}");
        }
        assert!(Cli::try_parse_from(["rsynproxy", "completions"]).is_err());
    }

    #[test]
    fn prometheus_takes_one_reading_and_all_netns_needs_it() {
        let parse = |a: &[&str]| {
            let mut v = vec!["rsynproxy", "stats"];
            v.extend_from_slice(a);
            Cli::try_parse_from(v).map(|c| c.cmd)
        };
        assert!(matches!(
            parse(&["--prometheus", "--all-netns"]),
            Ok(Cmd::Stats {
                prometheus: true,
                all_netns: true,
                ..
            })
        ));
        assert!(parse(&["--prometheus", "--netns", "web"]).is_ok());
        for bad in [
            &["--all-netns"][..],
            &["--prometheus", "--json"],
            &["--prometheus", "--interval", "1"],
            &["--prometheus", "--all-netns", "--netns", "web"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
