// SPDX-License-Identifier: GPL-2.0

//! The timestamp cookie: the SYN-ACK's TSval carries what the sequence-number cookie has no
//! room for (`synproxy_init_timestamp_cookie`, `synproxy_check_timestamp_cookie`).
//!
//! Bits 3..0: the client's window scale, or 0xf for none; bit 4: SACK permitted; bit 5: ECN;
//! the rest: our clock in milliseconds, low 6 bits cleared. The layout is the kernel's
//! (TS_OPT_* in net/ipv4/syncookies.c), so cookies from SYNPROXY and from XDP/BPF syncookie
//! helpers decode the same way.

use super::info::{Info, OPT_ECN, OPT_SACK_PERM, OPT_WSCALE};
use super::tcp::Options;

const WSCALE_MASK: u32 = 0xf;
const SACK_BIT: u32 = 1 << 4;
const ECN_BIT: u32 = 1 << 5;
const CLOCK_MASK: u32 = !0x3f;

/// Turns the client's options into the SYN-ACK's timestamps: TSecr echoes the client's
/// TSval, TSval is the cookie; the window scale announced becomes the rule's.
pub fn encode(info: &Info, o: &mut Options, now_ms: u32) {
    o.tsecr = o.tsval;
    o.tsval = now_ms & CLOCK_MASK;
    if o.options & OPT_WSCALE != 0 {
        o.tsval |= u32::from(o.wscale) & WSCALE_MASK;
        o.wscale = info.wscale;
    } else {
        o.tsval |= WSCALE_MASK;
    }
    if o.options & OPT_SACK_PERM != 0 {
        o.tsval |= SACK_BIT;
    }
    if o.options & OPT_ECN != 0 {
        o.tsval |= ECN_BIT;
    }
}

/// Recovers the client's window scale, SACK and ECN from the TSecr of its ACK.
pub fn decode(o: &mut Options) {
    o.wscale = (o.tsecr & WSCALE_MASK) as u8;
    if u32::from(o.wscale) != WSCALE_MASK {
        o.options |= OPT_WSCALE;
    }
    if o.tsecr & SACK_BIT != 0 {
        o.options |= OPT_SACK_PERM;
    }
    if o.tsecr & ECN_BIT != 0 {
        o.options |= OPT_ECN;
    }
}
