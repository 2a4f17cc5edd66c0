// SPDX-License-Identifier: GPL-2.0

//! Backend option mismatch: the options the client was given by the cookie SYN-ACK against
//! those the backend's SYN-ACK announces, and the window translation that makes up for a
//! window-scale difference. (SYNPROXY has neither: its man page says the options "must
//! match the backend", and a client told another window scale than the backend's reads
//! every window of the connection with the wrong scale.)
//!
//! Per connection, the state lives in the synproxy conntrack extension, whose three words
//! (`isn`, `its`, `tsoff`) are each idle for half of the connection's life:
//!
//! ```text
//!              cookie ACK (target)      backend SYN-ACK (hook)        established
//! isn          -                        our cookie ISN                (RST offsets)
//! its          -                        cookie TSval (for tsoff)      Scale::encode or 0
//! tsoff        -                        Told::stash                   timestamp offset
//! ```
//!
//! The target knows the rule but has no entry yet; the entry appears while the backend
//! SYN it sends passes conntrack, and the hook sees that SYN before `send` returns: the
//! stash travels from one to the other in a per-CPU slot keyed by the SYN's seq and ack.
//! The hook translates timestamps and windows only once the entry translates sequence
//! numbers (`IPS_SEQ_ADJUST`, set with the backend SYN-ACK), so neither stash is ever
//! taken for an offset or a scale.

use super::info::{Info, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use super::tcp::Options;
use core::fmt;

/// MSS a TCP peer assumes when the SYN-ACK has no MSS option (RFC 9293, 3.7.1).
pub const DEFAULT_MSS: u16 = 536;

/// The kinds of mismatch, each counted in `/proc/net/stat/rsynproxy_mismatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The backend's window scale is not the one the client was told (or one side has none).
    Wscale = 0,
    /// The backend's MSS is larger than the one the client was told.
    MssLarger = 1,
    /// The backend's MSS is smaller than the one the client was told.
    MssSmaller = 2,
    /// The client was told SACK is permitted; the backend does not permit it.
    SackAbsent = 3,
    /// The client was told timestamps are on; the backend has none.
    TsAbsent = 4,
}

/// Number of kinds.
pub const NKINDS: usize = 5;

/// Every kind, in column order.
pub const KINDS: [Kind; NKINDS] = [
    Kind::Wscale,
    Kind::MssLarger,
    Kind::MssSmaller,
    Kind::SackAbsent,
    Kind::TsAbsent,
];

/// The header line of `/proc/net/stat/rsynproxy_mismatch` (then one line per CPU, as
/// `/proc/net/stat/rsynproxy`: `entries`, always 0, and the counters, `%08x` each).
pub const HEADER: &[u8] = b"entries\t\twscale\tmss_larger\tmss_smaller\tsack_absent\tts_absent\n";

/// TCP options as a SYN-ACK announces them (to the client: what it was told; from the
/// backend: what it announced).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Told {
    /// Window scale, if announced.
    pub wscale: Option<u8>,
    /// MSS, if announced.
    pub mss: Option<u16>,
    /// SACK permitted.
    pub sack: bool,
    /// Timestamps.
    pub ts: bool,
}

const STASH_MARK: u32 = 1 << 31;
const STASH_TS: u32 = 1 << 21;
const STASH_SACK: u32 = 1 << 20;
const STASH_WS_SHIFT: u32 = 16;
const STASH_NO_WS: u32 = 0xf;

impl Told {
    /// What the cookie SYN-ACK of rule `info` told the client whose handshake ACK carries
    /// `ack` (the ACK's own options, before the cookie is decoded). Timestamps were
    /// announced if the rule has them and the client echoes one; window scale and SACK only
    /// with timestamps (the timestamp cookie carries them), the window scale being the
    /// rule's. The MSS is the rule's: a client SYN without an MSS option got none, which the
    /// ACK cannot tell (clients send one).
    pub fn from_ack(info: &Info, ack: &Options) -> Told {
        let ts = info.options & OPT_TIMESTAMP != 0 && ack.options & OPT_TIMESTAMP != 0;
        let mut cookie = *ack;
        cookie.options = 0;
        if ts {
            super::cookie::decode(&mut cookie);
        }
        Told {
            wscale: (ts && cookie.options & info.options & OPT_WSCALE != 0).then_some(info.wscale),
            mss: (info.options & OPT_MSS != 0).then_some(info.mss),
            sack: ts && cookie.options & info.options & OPT_SACK_PERM != 0,
            ts,
        }
    }

    /// What a SYN-ACK with options `o` announces.
    pub fn from_options(o: &Options) -> Told {
        Told {
            wscale: (o.options & OPT_WSCALE != 0).then_some(o.wscale),
            mss: (o.options & OPT_MSS != 0).then_some(o.mss_option),
            sack: o.options & OPT_SACK_PERM != 0,
            ts: o.options & OPT_TIMESTAMP != 0,
        }
    }

    /// The word kept in `tsoff` until the backend answers: never 0 (bit 31 set), so an
    /// entry without a stash (0, or an offset) is told apart from the hook's point of view
    /// by the connection's phase, not by the value.
    pub fn stash(&self) -> u32 {
        let ws = self.wscale.map_or(STASH_NO_WS, |w| u32::from(w.min(14)));
        let mut v = STASH_MARK | (ws << STASH_WS_SHIFT) | u32::from(self.mss.unwrap_or(0));
        if self.sack {
            v |= STASH_SACK;
        }
        if self.ts {
            v |= STASH_TS;
        }
        v
    }

    /// Reads a stash back; `None` for a word that is not one (0: no stash was left).
    pub fn unstash(v: u32) -> Option<Told> {
        if v & STASH_MARK == 0 {
            return None;
        }
        let ws = (v >> STASH_WS_SHIFT) & 0xf;
        let mss = (v & 0xffff) as u16;
        Some(Told {
            wscale: (ws != STASH_NO_WS).then_some(ws.min(14) as u8),
            mss: (mss != 0).then_some(mss),
            sack: v & STASH_SACK != 0,
            ts: v & STASH_TS != 0,
        })
    }
}

/// The mismatches between what the client was told and what the backend announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What the client was told.
    pub client: Told,
    /// What the backend announced.
    pub backend: Told,
    /// Bit `Kind as u8` set for each kind found.
    pub kinds: u8,
}

impl Mismatch {
    /// Compares the client's SYN-ACK with the backend's.
    pub fn find(client: Told, backend: Told) -> Mismatch {
        let mut kinds = 0u8;
        let mut set = |k: Kind| kinds |= 1 << k as u8;
        if client.wscale != backend.wscale {
            set(Kind::Wscale);
        }
        if let Some(told) = client.mss {
            let mss = backend.mss.unwrap_or(DEFAULT_MSS);
            if mss > told {
                set(Kind::MssLarger);
            } else if mss < told {
                set(Kind::MssSmaller);
            }
        }
        if client.sack && !backend.sack {
            set(Kind::SackAbsent);
        }
        if client.ts && !backend.ts {
            set(Kind::TsAbsent);
        }
        Mismatch {
            client,
            backend,
            kinds,
        }
    }

    /// Whether `k` was found.
    pub fn has(&self, k: Kind) -> bool {
        self.kinds & (1 << k as u8) != 0
    }

    /// The window translation the connection needs, if the scales differ.
    pub fn scale(&self) -> Option<Scale> {
        let s = Scale {
            backend: self.backend.wscale.unwrap_or(0).min(14),
            client: self.client.wscale.unwrap_or(0).min(14),
        };
        (s.backend != s.client).then_some(s)
    }
}

/// The window scales of a connection whose backend uses another than the client was told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    /// The backend's (0 if it announced none), at most 14.
    pub backend: u8,
    /// The one the client was told (0 if none), at most 14.
    pub client: u8,
}

const SCALE_MAGIC: u32 = 0x5753_ca00;
const SCALE_MAGIC_MASK: u32 = 0xffff_ff00;

impl Scale {
    /// The word kept in `its` once the backend has answered.
    pub fn encode(&self) -> u32 {
        SCALE_MAGIC | (u32::from(self.backend & 0xf) << 4) | u32::from(self.client & 0xf)
    }

    /// Reads [`Scale::encode`] back; `None` for any other word (0: no translation).
    #[inline(always)]
    pub fn decode(v: u32) -> Option<Scale> {
        if v & SCALE_MAGIC_MASK != SCALE_MAGIC {
            return None;
        }
        let s = Scale {
            backend: ((v >> 4) & 0xf) as u8,
            client: (v & 0xf) as u8,
        };
        (s.backend <= 14 && s.client <= 14 && s.backend != s.client).then_some(s)
    }

    /// The window field of a backend segment as the client must read it:
    /// `min((win << backend) >> client, 65535)`. Rounded down, so the client never
    /// believes more than the backend offers.
    pub fn translate(&self, win: u16) -> u16 {
        let bytes = u32::from(win) << self.backend.min(14);
        (bytes >> self.client.min(14)).min(0xffff) as u16
    }
}

/// The TCP checksum's 32-bit word at offset 12 of the header (data offset, flags, window)
/// with the window replaced: what an incremental update (`inet_proto_csum_replace4`) is
/// given. `word` is that word as read.
pub fn with_window(word: u32, win: u16) -> u32 {
    (word & 0xffff_0000) | u32::from(win)
}

/// Optional value for the log line: a number or "none".
struct Opt<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Opt<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("none"),
        }
    }
}

/// The log line for a mismatch on the connection to `backend`:`port`.
pub struct Report<'a> {
    /// The backend's address.
    pub backend: core::net::IpAddr,
    /// The backend's port.
    pub port: u16,
    /// What was found.
    pub m: &'a Mismatch,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.m;
        match self.backend {
            core::net::IpAddr::V4(a) => write!(f, "backend {a}:{}", self.port)?,
            core::net::IpAddr::V6(a) => write!(f, "backend [{a}]:{}", self.port)?,
        }
        f.write_str(" announces other options than the client was given:")?;
        let mut sep = " ";
        if m.has(Kind::Wscale) {
            write!(
                f,
                "{sep}wscale {} (client told {})",
                Opt(m.backend.wscale),
                Opt(m.client.wscale)
            )?;
            sep = ", ";
        }
        for (k, what) in [(Kind::MssLarger, "larger"), (Kind::MssSmaller, "smaller")] {
            if m.has(k) {
                write!(
                    f,
                    "{sep}mss {} (client told {}, {what})",
                    m.backend.mss.unwrap_or(DEFAULT_MSS),
                    Opt(m.client.mss)
                )?;
                sep = ", ";
            }
        }
        if m.has(Kind::SackAbsent) {
            write!(f, "{sep}no sackOK (client told sackOK)")?;
            sep = ", ";
        }
        if m.has(Kind::TsAbsent) {
            write!(f, "{sep}no TS (client told TS)")?;
        }
        Ok(())
    }
}
