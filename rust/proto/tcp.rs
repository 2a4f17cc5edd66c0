// SPDX-License-Identifier: GPL-2.0

//! TCP headers and options as SYNPROXY reads and writes them (`synproxy_parse_options`,
//! `synproxy_build_options`, `synproxy_tstamp_adjust` in nf_synproxy_core.c).
//!
//! Everything works on byte slices and never panics, whatever the input.

use super::info::{OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};

/// `FIN`.
pub const FIN: u8 = 0x01;
/// `SYN`.
pub const SYN: u8 = 0x02;
/// `RST`.
pub const RST: u8 = 0x04;
/// `ACK`.
pub const ACK: u8 = 0x10;
/// `ECE`.
pub const ECE: u8 = 0x40;
/// `CWR`.
pub const CWR: u8 = 0x80;

/// Length of the fixed header.
pub const HDR_LEN: usize = 20;
/// Longest option area (doff 15).
pub const MAX_OPT_LEN: usize = 40;

const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_MSS: u8 = 2;
const TCPOPT_WINDOW: u8 = 3;
const TCPOPT_SACK_PERM: u8 = 4;
const TCPOPT_TIMESTAMP: u8 = 8;
const TCPOLEN_MSS: u8 = 4;
const TCPOLEN_WINDOW: u8 = 3;
const TCPOLEN_SACK_PERM: u8 = 2;
const TCPOLEN_TIMESTAMP: u8 = 10;
/// `TCP_MAX_WSCALE`.
const MAX_WSCALE: u8 = 14;

/// The fixed part of a TCP header, host byte order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack_seq: u32,
    /// Header length in 32-bit words (5..=15 when valid).
    pub doff: u8,
    /// Flags byte (`FIN` … `CWR`).
    pub flags: u8,
    /// Window.
    pub window: u16,
}

/// The header's fourth word (data offset, flags, window): all that the segments of an
/// established connection are read for, so the hook decodes no more of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Control {
    /// Header length in 32-bit words (5..=15 when valid).
    pub doff: u8,
    /// Flags byte (`FIN` … `CWR`).
    pub flags: u8,
    /// Window.
    pub window: u16,
}

impl Control {
    /// Reads the fourth word of the fixed header.
    #[inline]
    pub fn read(b: &[u8; HDR_LEN]) -> Self {
        Control {
            doff: b[12] >> 4,
            flags: b[13],
            window: be16(b, 14),
        }
    }

    /// Length of the option area the header announces, or `None` when doff < 5.
    #[inline]
    pub fn options_len(&self) -> Option<usize> {
        (usize::from(self.doff) * 4).checked_sub(HDR_LEN)
    }
}

/// Writes `v` at `at` in `out` (nothing if it does not fit) with plain stores: in the kernel
/// build `copy_from_slice` and `fill` stay out-of-line calls, about 20 of them per packet the
/// proxy sent before this.
#[inline(always)]
pub fn put<const N: usize>(out: &mut [u8], at: usize, v: [u8; N]) {
    if let Some(d) = at
        .checked_add(N)
        .and_then(|end| out.get_mut(at..end))
        .and_then(|d| <&mut [u8; N]>::try_from(d).ok())
    {
        *d = v;
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Header {
    /// Reads the fixed header.
    pub fn read(b: &[u8; HDR_LEN]) -> Self {
        let c = Control::read(b);
        Header {
            sport: be16(b, 0),
            dport: be16(b, 2),
            seq: be32(b, 4),
            ack_seq: be32(b, 8),
            doff: c.doff,
            flags: c.flags,
            window: c.window,
        }
    }

    /// Length of the option area the header announces, or `None` when doff < 5.
    pub fn options_len(&self) -> Option<usize> {
        self.control().options_len()
    }

    /// The fields of the header's fourth word.
    pub fn control(&self) -> Control {
        Control {
            doff: self.doff,
            flags: self.flags,
            window: self.window,
        }
    }

    /// Whether all of `set` and none of `clear` are among the flags.
    pub fn has(&self, set: u8, clear: u8) -> bool {
        self.flags & set == set && self.flags & clear == 0
    }
}

/// TCP options as SYNPROXY tracks them (`struct synproxy_options`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `OPT_*` bits of the options present (or to send).
    pub options: u8,
    /// Window scale (clamped to 14 when parsed).
    pub wscale: u8,
    /// MSS option value.
    pub mss_option: u16,
    /// The client's MSS, to encode in the cookie.
    pub mss_encode: u16,
    /// Timestamp value.
    pub tsval: u32,
    /// Timestamp echo reply.
    pub tsecr: u32,
}

/// An option area's first word when it starts with the timestamp option, aligned.
const ALIGNED_TS: [u8; 4] = [TCPOPT_NOP, TCPOPT_NOP, TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP];

/// The next whole option other than NOP at or after `*i`, as `(kind, offset_of_kind, len)`,
/// walking like the kernel's parsers: `None` at EOL, at a truncated option, at a length below
/// 2 or past the end (and again on every later call).
#[inline]
fn next_option(opts: &[u8], i: &mut usize) -> Option<(u8, usize, usize)> {
    while let Some(&kind) = opts.get(*i) {
        match kind {
            TCPOPT_EOL => return None,
            TCPOPT_NOP => *i += 1,
            _ => {
                let size = usize::from(*opts.get(*i + 1)?);
                if size < 2 || size > opts.len() - *i {
                    return None;
                }
                let at = *i;
                *i += size;
                return Some((kind, at, size));
            }
        }
    }
    None
}

impl Options {
    /// Parses an option area (the `doff * 4 - 20` bytes after the fixed header).
    pub fn parse(opts: &[u8]) -> Self {
        let mut o = Options::default();
        let mut i = 0;
        while let Some((kind, at, size)) = next_option(opts, &mut i) {
            let body = &opts[at + 2..at + size];
            match (kind, size as u8) {
                (TCPOPT_MSS, TCPOLEN_MSS) => {
                    o.mss_option = be16(body, 0);
                    o.options |= OPT_MSS;
                }
                (TCPOPT_WINDOW, TCPOLEN_WINDOW) => {
                    o.wscale = body[0].min(MAX_WSCALE);
                    o.options |= OPT_WSCALE;
                }
                (TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP) => {
                    o.tsval = be32(body, 0);
                    o.tsecr = be32(body, 4);
                    o.options |= OPT_TIMESTAMP;
                }
                (TCPOPT_SACK_PERM, TCPOLEN_SACK_PERM) => o.options |= OPT_SACK_PERM,
                _ => {}
            }
        }
        o
    }

    /// Bytes [`Options::write`] produces (a multiple of 4, at most 20).
    pub fn size(&self) -> usize {
        let mut n = 0;
        if self.options & OPT_MSS != 0 {
            n += 4;
        }
        if self.options & OPT_TIMESTAMP != 0 {
            n += 12;
        } else if self.options & OPT_SACK_PERM != 0 {
            n += 4;
        }
        if self.options & OPT_WSCALE != 0 {
            n += 4;
        }
        n
    }

    /// Writes the options in SYNPROXY's layout: MSS; SACK_PERM+TS or NOP,NOP,TS or
    /// NOP,NOP,SACK_PERM; NOP,WSCALE. Returns the bytes written, 0 if `out` is too short.
    pub fn write(&self, out: &mut [u8]) -> usize {
        let size = self.size();
        let Some(out) = out.get_mut(..size) else {
            return 0;
        };
        let mut at = 0;
        let mut emit = |w: u32| {
            put(out, at, w.to_be_bytes());
            at += 4;
        };
        let word = |a: u8, b: u8, c: u8, d: u8| u32::from_be_bytes([a, b, c, d]);
        if self.options & OPT_MSS != 0 {
            emit(word(TCPOPT_MSS, TCPOLEN_MSS, 0, 0) | u32::from(self.mss_option));
        }
        if self.options & OPT_TIMESTAMP != 0 {
            if self.options & OPT_SACK_PERM != 0 {
                emit(word(
                    TCPOPT_SACK_PERM,
                    TCPOLEN_SACK_PERM,
                    TCPOPT_TIMESTAMP,
                    TCPOLEN_TIMESTAMP,
                ));
            } else {
                emit(word(
                    TCPOPT_NOP,
                    TCPOPT_NOP,
                    TCPOPT_TIMESTAMP,
                    TCPOLEN_TIMESTAMP,
                ));
            }
            emit(self.tsval);
            emit(self.tsecr);
        } else if self.options & OPT_SACK_PERM != 0 {
            emit(word(
                TCPOPT_NOP,
                TCPOPT_NOP,
                TCPOPT_SACK_PERM,
                TCPOLEN_SACK_PERM,
            ));
        }
        if self.options & OPT_WSCALE != 0 {
            emit(word(TCPOPT_NOP, TCPOPT_WINDOW, TCPOLEN_WINDOW, self.wscale));
        }
        size
    }
}

/// Longest segment [`build`] writes: header plus the largest option set.
#[cfg(any(not(MODULE), rsynproxy_kunit))]
pub const MAX_BUILT_LEN: usize = HDR_LEN + 24;

/// Writes a TCP header (`h`, doff from the options) followed by `o`'s options into `out`,
/// checksum and urgent pointer zero. Returns the length, 0 if `out` is too short.
pub fn build(h: &Header, o: &Options, out: &mut [u8]) -> usize {
    let len = HDR_LEN + o.size();
    let Some(out) = out.get_mut(..len) else {
        return 0;
    };
    put(out, 0, h.sport.to_be_bytes());
    put(out, 2, h.dport.to_be_bytes());
    put(out, 4, h.seq.to_be_bytes());
    put(out, 8, h.ack_seq.to_be_bytes());
    out[12] = ((len / 4) as u8) << 4;
    out[13] = h.flags;
    put(out, 14, h.window.to_be_bytes());
    put(out, 16, [0u8; 4]);
    o.write(&mut out[HDR_LEN..]);
    len
}

/// Which way a packet travels in its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    Original,
    /// Server to client.
    Reply,
}

/// Shifts the timestamp option(s) of an option area by `tsoff`, one per call: a reply's TSval
/// is lowered (the client sees our clock), an original packet's TSecr raised (the server sees
/// its own). Walks on from `*i` (0 at the start) to the next timestamp option,
/// shifts it, and returns `(at, old, new)` for the rewritten word; `None` when there is none
/// left. The walk reads only kinds and lengths, which the rewrite leaves alone, so rewriting
/// as we go sees the same options as the kernel's loop does (every timestamp option of
/// the right length is shifted, as nf_synproxy_core.c does).
#[inline(always)]
pub fn shift_timestamp(
    opts: &mut [u8],
    i: &mut usize,
    dir: Dir,
    tsoff: u32,
) -> Option<(usize, u32, u32)> {
    loop {
        // The layout Linux, the BSDs and Windows send (RFC 7323 appendix A): NOP NOP TS first.
        // The walk would find the same option at 2 and go on at 12.
        let at = if *i == 0 && opts.len() >= 12 && opts.get(..4) == Some(&ALIGNED_TS) {
            *i = 12;
            2
        } else {
            let (kind, at, size) = next_option(opts, i)?;
            if kind != TCPOPT_TIMESTAMP || size != usize::from(TCPOLEN_TIMESTAMP) {
                continue;
            }
            at
        };
        let word = match dir {
            Dir::Reply => at + 2,
            Dir::Original => at + 6,
        };
        let field: &mut [u8; 4] = opts.get_mut(word..word + 4)?.try_into().ok()?;
        let old = u32::from_be_bytes(*field);
        let new = match dir {
            Dir::Reply => old.wrapping_sub(tsoff),
            Dir::Original => old.wrapping_add(tsoff),
        };
        *field = new.to_be_bytes();
        return Some((word, old, new));
    }
}

/// A 32-bit word at byte offset `at` of an option area (so of the segment: the area starts
/// at 20) as the TCP checksum's 16-bit columns add it up. At an odd offset its bytes
/// b0 b1 b2 b3 fall in three columns (.. b0)(b1 b2)(b3 ..), which sum like the aligned word
/// b1 b0 b3 b2: that is what an incremental update (RFC 1624, `inet_proto_csum_replace4`)
/// must be given. Linux, Windows and the BSDs align the timestamp option, but a NOP before
/// it is legal, and nf_synproxy_core.c passes the bare values: a wrong checksum (C bug 6).
#[inline(always)]
pub fn csum_word(word: u32, at: usize) -> u32 {
    if at % 2 == 1 {
        word.swap_bytes().rotate_left(16)
    } else {
        word
    }
}
