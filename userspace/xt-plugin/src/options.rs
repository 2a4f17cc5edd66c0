//! The one option table from which help, parse, print and save are all derived, so the
//! saved form always re-parses to the same blob.

use rsynproxy_proto::info::{
    Info, MAX_WSCALE, OPT_ECN, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE,
};
use std::ffi::CStr;
use std::fmt::Write;

/// What an option carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// Nothing: the option sets its bit.
    Flag,
    /// The window scale, 0..=14.
    Wscale,
    /// The MSS, 1..=65535.
    Mss,
}

impl Value {
    /// The accepted range, inclusive.
    pub const fn range(self) -> (u32, u32) {
        match self {
            Value::Flag => (0, 0),
            Value::Wscale => (0, MAX_WSCALE as u32),
            Value::Mss => (1, u16::MAX as u32),
        }
    }

    /// The value stored in `info`.
    pub fn get(self, info: &Info) -> u32 {
        match self {
            Value::Flag => 0,
            Value::Wscale => u32::from(info.wscale),
            Value::Mss => u32::from(info.mss),
        }
    }
}

/// One command-line option of the target.
pub struct Opt {
    /// Name without the leading `--`.
    pub name: &'static CStr,
    /// The `OPT_*` bit it sets.
    pub bit: u8,
    /// What it carries.
    pub value: Value,
    /// One line of `--help`.
    pub help: &'static str,
}

impl Opt {
    /// The name as text.
    pub fn name(&self) -> &'static str {
        self.name.to_str().unwrap_or_default()
    }
}

/// The options, in the order of libxt_SYNPROXY (help, print and save use this order).
pub const OPTIONS: [Opt; 5] = [
    Opt {
        name: c"sack-perm",
        bit: OPT_SACK_PERM,
        value: Value::Flag,
        help: "Pass SACK permission on to clients (needs --timestamp)",
    },
    Opt {
        name: c"timestamp",
        bit: OPT_TIMESTAMP,
        value: Value::Flag,
        help: "Use timestamps; they carry wscale, SACK and ECN in the cookie",
    },
    Opt {
        name: c"wscale",
        bit: OPT_WSCALE,
        value: Value::Wscale,
        help: "Window scale announced to clients, 0-14 (needs --timestamp)",
    },
    Opt {
        name: c"mss",
        bit: OPT_MSS,
        value: Value::Mss,
        help: "MSS announced to clients, 1-65535",
    },
    Opt {
        name: c"ecn",
        bit: OPT_ECN,
        value: Value::Flag,
        help: "Pass ECN on to clients (needs --timestamp)",
    },
];

/// `-j RSYNPROXY --help`.
pub fn help() -> String {
    let mut s = String::from("RSYNPROXY target options:\n");
    for o in &OPTIONS {
        let arg = if o.value == Value::Flag { "" } else { " value" };
        let _ = writeln!(s, "  --{:<33}{}", format!("{}{arg}", o.name()), o.help);
    }
    s.push_str("Values must match the backend's (see the man page for the full recipe).\n");
    s
}

/// The options that are set, with their values, in table order.
fn set_options(info: &Info) -> impl Iterator<Item = (&'static Opt, Option<u32>)> + '_ {
    OPTIONS
        .iter()
        .filter(|o| info.options & o.bit != 0)
        .map(|o| {
            let v = (o.value != Value::Flag).then(|| o.value.get(info));
            (o, v)
        })
}

/// `iptables -L` form: ` RSYNPROXY sack-perm timestamp wscale 9 mss 1460`.
pub fn print(info: &Info) -> String {
    let mut s = String::from(" RSYNPROXY");
    for (o, v) in set_options(info) {
        let _ = write!(s, " {}", o.name());
        if let Some(v) = v {
            let _ = write!(s, " {v}");
        }
    }
    s
}

/// `iptables -S` / `iptables-save` form: ` --sack-perm --timestamp --wscale 9 --mss 1460`.
pub fn save(info: &Info) -> String {
    let mut s = String::new();
    for (o, v) in set_options(info) {
        let _ = write!(s, " --{}", o.name());
        if let Some(v) = v {
            let _ = write!(s, " {v}");
        }
    }
    s
}
