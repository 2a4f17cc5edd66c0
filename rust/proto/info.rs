// SPDX-License-Identifier: GPL-2.0

//! The rule's options, `struct xt_synproxy_info` (same ABI as SYNPROXY), and the rule checks
//! that checkentry applies.
//!
//! The C target accepts any blob: unknown option bits, `wscale` 15..255 (sent to clients as
//! is) and `mss` 0. RSYNPROXY refuses those when the rule is inserted, with a reason.

use core::fmt;

/// Announce `mss` in the SYN-ACK (`XT_SYNPROXY_OPT_MSS`).
pub const OPT_MSS: u8 = 0x01;
/// Announce `wscale` (`XT_SYNPROXY_OPT_WSCALE`).
pub const OPT_WSCALE: u8 = 0x02;
/// Allow SACK (`XT_SYNPROXY_OPT_SACK_PERM`).
pub const OPT_SACK_PERM: u8 = 0x04;
/// Use timestamps (`XT_SYNPROXY_OPT_TIMESTAMP`).
pub const OPT_TIMESTAMP: u8 = 0x08;
/// Pass ECN on (`XT_SYNPROXY_OPT_ECN`).
pub const OPT_ECN: u8 = 0x10;
/// Every bit the ABI defines.
pub const OPT_KNOWN: u8 = OPT_MSS | OPT_WSCALE | OPT_SACK_PERM | OPT_TIMESTAMP | OPT_ECN;

/// Largest window scale TCP allows (RFC 7323, `TCP_MAX_WSCALE`).
pub const MAX_WSCALE: u8 = 14;

/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u16 = 6;

/// The target's options as the rule carries them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// `OPT_*` bits.
    pub options: u8,
    /// Window scale announced to clients, when `OPT_WSCALE` is set.
    pub wscale: u8,
    /// MSS announced to clients, when `OPT_MSS` is set.
    pub mss: u16,
}

/// What the rule's protocol match says, read from `ipt_entry`/`ip6t_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtoMatch {
    /// The protocol number, or `None` when the rule matches any protocol.
    pub proto: Option<u16>,
    /// `! -p …`.
    pub inverted: bool,
}

/// Why a rule was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    /// The rule does not match `-p tcp`.
    NotTcp,
    /// The rule matches `! -p tcp` (or another inverted protocol).
    ProtoInverted,
    /// Option bits the ABI does not define.
    UnknownOptions(u8),
    /// `--wscale` above 14.
    WscaleTooLarge(u8),
    /// `--mss 0`.
    MssZero,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RuleError::NotTcp => f.write_str("rule must match -p tcp"),
            RuleError::ProtoInverted => f.write_str("rule must not invert the protocol match"),
            RuleError::UnknownOptions(bits) => write!(f, "unknown option bits 0x{bits:02x}"),
            RuleError::WscaleTooLarge(w) => write!(f, "wscale {w} is above the maximum of 14"),
            RuleError::MssZero => f.write_str("mss must be 1-65535"),
        }
    }
}

/// Checks a rule before it is inserted.
///
/// Values whose flag is clear are ignored, as the data path ignores them.
pub fn check_rule(proto: ProtoMatch, info: &Info) -> Result<(), RuleError> {
    if proto.inverted {
        return Err(RuleError::ProtoInverted);
    }
    if proto.proto != Some(IPPROTO_TCP) {
        return Err(RuleError::NotTcp);
    }
    let unknown = info.options & !OPT_KNOWN;
    if unknown != 0 {
        return Err(RuleError::UnknownOptions(unknown));
    }
    if info.options & OPT_WSCALE != 0 && info.wscale > MAX_WSCALE {
        return Err(RuleError::WscaleTooLarge(info.wscale));
    }
    if info.options & OPT_MSS != 0 && info.mss == 0 {
        return Err(RuleError::MssZero);
    }
    Ok(())
}
