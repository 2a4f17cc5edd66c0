//! Round trips through the real libxtables option parser with this plugin's table.

use super::*;
use rsynproxy_proto::info::{OPT_ECN, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use std::process::Command;
use std::sync::{Mutex, Once};

extern "C" {
    static mut optarg: *mut c_char;
}

static INIT: Once = Once::new();
/// libxtables keeps global state; one parse at a time.
static LOCK: Mutex<()> = Mutex::new(());

fn xt_init() {
    INIT.call_once(|| {
        static GLOBALS: Shared<sys::xtables_globals> = Shared(UnsafeCell::new({
            // SAFETY: all-zero globals; libxtables fills in the default exit_err.
            let mut g: sys::xtables_globals = unsafe { std::mem::zeroed() };
            g.program_name = c"iptables".as_ptr();
            g.program_version = c"1.8.9".as_ptr();
            g
        }));
        // SAFETY: called once, before any other libxtables use in this process.
        let rc = unsafe { sys::xtables_init_all(GLOBALS.0.get(), sys::NFPROTO_IPV4 as u8) };
        assert_eq!(rc, 0);
        // Registration validates the version string, the size and the option table.
        register();
    });
}

/// Parses `--opt [value]` tokens the way iptables does: libxtables' parser, then ours.
fn parse_tokens(args: &[&str]) -> Info {
    xt_init();
    let _guard = LOCK.lock().unwrap();
    // SAFETY: all-zero is the blob iptables starts from.
    let mut blob: sys::nf_synproxy_info = unsafe { std::mem::zeroed() };
    let mut xflags = 0;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let name = a
            .strip_prefix("--")
            .unwrap_or_else(|| panic!("not an option: {a}"));
        let id = OPTIONS
            .iter()
            .position(|o| o.name() == name)
            .expect("unknown option");
        let arg = (OPTIONS[id].value != Value::Flag)
            .then(|| CString::new(*it.next().expect("missing value")).unwrap());
        // SAFETY: all-zero, then the fields xtables_option_tpcall() sets.
        let mut cb: sys::xt_option_call = unsafe { std::mem::zeroed() };
        // SAFETY: `id` is within the table.
        cb.entry = unsafe { X6_OPTIONS.0.get().cast::<sys::xt_option_entry>().add(id) };
        cb.arg = arg.as_ref().map_or(std::ptr::null(), |a| a.as_ptr());
        cb.ext_name = c"RSYNPROXY".as_ptr();
        cb.data = std::ptr::addr_of_mut!(blob).cast();
        cb.xflags = xflags;
        // SAFETY: libxtables checks getopt's `optarg` for presence; iptables leaves the
        // argument there too. Single-threaded under LOCK.
        unsafe { optarg = cb.arg.cast_mut() };
        // SAFETY: a complete option call for this target.
        unsafe { parse(&mut cb) };
        xflags = cb.xflags;
    }
    // SAFETY: the blob is an xt_synproxy_info.
    unsafe { info_of(std::ptr::addr_of!(blob).cast()) }
}

fn tokens(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn registration_is_accepted_by_libxtables() {
    xt_init();
    // SAFETY: registered; read-only look at what libxtables accepted.
    let t = unsafe { &*TARGET.0.get() };
    assert_eq!(t.size, 8, "XT_ALIGN(sizeof(struct xt_synproxy_info))");
    assert_eq!(t.userspacesize, t.size);
    assert!(t.xlate.is_none(), "no nftables translation exists");
}

#[test]
fn seed_recipe_parses() {
    let info = parse_tokens(&tokens("--sack-perm --timestamp --mss 1460 --wscale 9"));
    assert_eq!(
        info,
        Info {
            options: OPT_SACK_PERM | OPT_TIMESTAMP | OPT_MSS | OPT_WSCALE,
            wscale: 9,
            mss: 1460
        }
    );
}

#[test]
fn print_and_save_forms() {
    let info = Info {
        options: OPT_SACK_PERM | OPT_TIMESTAMP | OPT_MSS | OPT_WSCALE,
        wscale: 9,
        mss: 1460,
    };
    assert_eq!(
        options::save(&info),
        " --sack-perm --timestamp --wscale 9 --mss 1460"
    );
    assert_eq!(
        options::print(&info),
        " RSYNPROXY sack-perm timestamp wscale 9 mss 1460"
    );
    assert_eq!(options::save(&Info::default()), "");
    let all = Info {
        options: OPT_SACK_PERM | OPT_TIMESTAMP | OPT_MSS | OPT_WSCALE | OPT_ECN,
        wscale: 0,
        mss: 1,
    };
    assert_eq!(
        options::save(&all),
        " --sack-perm --timestamp --wscale 0 --mss 1 --ecn"
    );
}

#[test]
fn save_reparses_to_the_same_blob() {
    let mut n = 0;
    for options in 0..32u8 {
        for wscale in [0u8, 7, 14] {
            for mss in [1u16, 536, 1460, 65535] {
                let info = Info {
                    options,
                    wscale: if options & OPT_WSCALE != 0 { wscale } else { 0 },
                    mss: if options & OPT_MSS != 0 { mss } else { 0 },
                };
                let saved = options::save(&info);
                assert_eq!(parse_tokens(&tokens(&saved)), info, "saved as {saved:?}");
                // Order on the command line does not matter; save normalises it.
                let reversed: Vec<&str> = {
                    let t = tokens(&saved);
                    let mut groups: Vec<Vec<&str>> = Vec::new();
                    for tok in t {
                        if tok.starts_with("--") {
                            groups.push(vec![tok]);
                        } else {
                            groups.last_mut().unwrap().push(tok);
                        }
                    }
                    groups.into_iter().rev().flatten().collect()
                };
                assert_eq!(options::save(&parse_tokens(&reversed)), saved);
                n += 1;
            }
        }
    }
    assert_eq!(n, 32 * 3 * 4);
}

#[test]
fn help_lists_every_option_in_table_order() {
    let help = options::help();
    assert!(help.starts_with("RSYNPROXY target options:\n"));
    let mut last = 0;
    for o in &OPTIONS {
        let needle = format!("  --{}", o.name());
        let at = help
            .find(&needle)
            .unwrap_or_else(|| panic!("{needle} missing"));
        assert!(at > last, "{needle} out of order");
        assert!(help[at..].lines().next().unwrap().ends_with(o.help));
        last = at;
    }
    assert!(help.contains("--wscale value") && help.contains("--mss value"));
}

/// Child half of `bad_values_are_refused`: parses RSYNPROXY_TEST_ARGS in a process libxtables
/// may exit.
#[test]
#[ignore = "run by bad_values_are_refused in a child process"]
fn parse_child() {
    let args = std::env::var("RSYNPROXY_TEST_ARGS").unwrap();
    let info = parse_tokens(&tokens(&args));
    println!("PARSED {info:?}");
}

#[test]
fn bad_values_are_refused() {
    let cases = [
        (
            "--wscale 15",
            r#"bad value for option "--wscale", or out of range (0-14)"#,
        ),
        (
            "--wscale 255",
            r#"bad value for option "--wscale", or out of range (0-14)"#,
        ),
        ("--wscale -1", r#"bad value for option "--wscale""#),
        (
            "--mss 0",
            r#"bad value for option "--mss", or out of range (1-65535)"#,
        ),
        (
            "--mss 65536",
            r#"bad value for option "--mss", or out of range (1-65535)"#,
        ),
        ("--mss 1460x", r#"bad value for option "--mss""#),
        (
            "--mss 1460 --mss 536",
            r#"option "--mss" can only be used once"#,
        ),
        (
            "--timestamp --timestamp",
            r#"option "--timestamp" can only be used once"#,
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::parse_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RSYNPROXY_TEST_ARGS", args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args}: status {:?}, stdout {stdout}",
            out.status
        );
        assert!(!stdout.contains("PARSED"), "{args}: accepted: {stdout}");
        assert!(
            stderr.contains(want),
            "{args}: stderr {stderr:?} lacks {want:?}"
        );
    }
    // And the control: a good value goes through in the same harness.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::parse_child", "--ignored", "--nocapture"])
        .env("RSYNPROXY_TEST_ARGS", "--wscale 14 --mss 65535")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("PARSED"));
}
