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

/// The header's fourth word (data offset, flags, window) as one host-order word, the
/// reserved bits cleared: all that the segments of an established connection are read for,
/// so the hook decodes no more of them, and each field only when it is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Control(u32);

/// The reserved bits between the data offset and the flags.
const RESERVED: u32 = 0x0f00_0000;

impl Control {
    /// Reads the fourth word of the fixed header.
    #[inline(always)]
    pub fn read(b: &[u8; HDR_LEN]) -> Self {
        Control::from_word(u32::from_be_bytes([b[12], b[13], b[14], b[15]]))
    }

    /// The fourth word as read from the wire (`u32::from_be_bytes`).
    #[inline(always)]
    pub fn from_word(w: u32) -> Self {
        Control(w & !RESERVED)
    }

    /// Header length in 32-bit words (5..=15 when valid).
    #[inline(always)]
    pub fn doff(&self) -> u8 {
        (self.0 >> 28) as u8
    }

    /// Flags byte (`FIN` … `CWR`).
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        (self.0 >> 16) as u8
    }

    /// Window.
    #[inline(always)]
    pub fn window(&self) -> u16 {
        self.0 as u16
    }

    /// Length of the option area the header announces, or `None` when doff < 5.
    #[inline(always)]
    pub fn options_len(&self) -> Option<usize> {
        ((self.0 >> 28) as usize * 4).checked_sub(HDR_LEN)
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

/// The big-endian 16-bit field at `at` (0 past the end: callers read within what they
/// checked). One bounds check, always inlined: out of line it cost a call per field.
#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..).and_then(|b| b.first_chunk::<2>()) {
        Some(w) => u16::from_be_bytes(*w),
        None => 0,
    }
}

/// The big-endian 32-bit field at `at`, as [`be16`].
#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..).and_then(|b| b.first_chunk::<4>()) {
        Some(w) => u32::from_be_bytes(*w),
        None => 0,
    }
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
            doff: c.doff(),
            flags: c.flags(),
            window: c.window(),
        }
    }

    /// Length of the option area the header announces, or `None` when doff < 5.
    pub fn options_len(&self) -> Option<usize> {
        self.control().options_len()
    }

    /// The fields of the header's fourth word.
    pub fn control(&self) -> Control {
        Control::from_word(
            u32::from(self.doff) << 28 | u32::from(self.flags) << 16 | u32::from(self.window),
        )
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
    /// Parses an option area (the `doff * 4 - 20` bytes after the fixed header), walking it
    /// like the kernel's parsers ([`next_option`]): stops at EOL, at a truncated option and at
    /// a length below 2 or past the end. Matched on slices, one length check per option:
    /// with an index walk and bounds checks per field it cost 1.6 x C's parser per SYN.
    pub fn parse(opts: &[u8]) -> Self {
        let mut o = Options::default();
        let mut rest = opts;
        loop {
            let size = match rest {
                [TCPOPT_NOP, tail @ ..] => {
                    rest = tail;
                    continue;
                }
                [TCPOPT_EOL, ..] | [] | [_] => break,
                [_, size, ..] => usize::from(*size),
            };
            if size < 2 {
                break;
            }
            let (Some(opt), Some(tail)) = (rest.get(..size), rest.get(size..)) else {
                break;
            };
            rest = tail;
            let [kind, _, body @ ..] = opt else {
                break;
            };
            match (*kind, body) {
                (TCPOPT_MSS, &[a, b]) => {
                    o.mss_option = u16::from_be_bytes([a, b]);
                    o.options |= OPT_MSS;
                }
                (TCPOPT_WINDOW, &[w]) => {
                    o.wscale = w.min(MAX_WSCALE);
                    o.options |= OPT_WSCALE;
                }
                (TCPOPT_TIMESTAMP, &[v0, v1, v2, v3, e0, e1, e2, e3]) => {
                    o.tsval = u32::from_be_bytes([v0, v1, v2, v3]);
                    o.tsecr = u32::from_be_bytes([e0, e1, e2, e3]);
                    o.options |= OPT_TIMESTAMP;
                }
                (TCPOPT_SACK_PERM, &[]) => o.options |= OPT_SACK_PERM,
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
        if *i == 0 && opts.len() >= 12 && opts.get(..4) == Some(&ALIGNED_TS) {
            // Its words at the constant offsets 4 (TSval) and 8 (TSecr).
            *i = 12;
            return match dir {
                Dir::Reply => shift_word(opts, 4, dir, tsoff),
                Dir::Original => shift_word(opts, 8, dir, tsoff),
            };
        }
        let (kind, at, size) = next_option(opts, i)?;
        if kind != TCPOPT_TIMESTAMP || size != usize::from(TCPOLEN_TIMESTAMP) {
            continue;
        }
        return match dir {
            Dir::Reply => shift_word(opts, at + 2, dir, tsoff),
            Dir::Original => shift_word(opts, at + 6, dir, tsoff),
        };
    }
}

/// [`shift_timestamp`]'s rewrite of the word at `word`: `(word, old, new)`, `None` if the
/// area ends before it.
#[inline(always)]
fn shift_word(opts: &mut [u8], word: usize, dir: Dir, tsoff: u32) -> Option<(usize, u32, u32)> {
    let field = opts.get_mut(word..)?.first_chunk_mut::<4>()?;
    let old = u32::from_be_bytes(*field);
    let new = match dir {
        Dir::Reply => old.wrapping_sub(tsoff),
        Dir::Original => old.wrapping_add(tsoff),
    };
    *field = new.to_be_bytes();
    Some((word, old, new))
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
