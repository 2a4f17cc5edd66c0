//! What the fuzz targets share: a reader of fixed-layout inputs, and independent references
//! (transcriptions of the C loops of nf_synproxy_core.c, RFC 1071/1624 checksums) that the
//! code under test is checked against.

#![allow(dead_code)]

use rsynproxy_proto::info::{OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use rsynproxy_proto::tcp::Options;

/// Reads fields off the front of the input; past its end, zeros (so that short inputs still
/// reach every step, and seeds stay readable: the layouts are fixed).
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let n = N.min(self.0.len());
        b[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        b
    }
    pub fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.bytes())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.bytes())
    }
    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(usize::MAX)
    }

    /// Options with every field taken from the input, also values no parser gives (window
    /// scale above 14, any bits, fields without their bit).
    pub fn options(&mut self) -> Options {
        Options {
            options: self.u8(),
            wscale: self.u8(),
            mss_option: self.u16(),
            mss_encode: self.u16(),
            tsval: self.u32(),
            tsecr: self.u32(),
        }
    }
}

// Not every target uses it.
#[allow(unused_imports)]
pub use rsynproxy_proto::c_reference::c_parse;

/// The offsets of the timestamp options `synproxy_tstamp_adjust` rewrites (`optoff`/`optend`
/// transcribed): each is the offset of a kind byte 8 whose length byte is 10.
pub fn c_timestamps(area: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let optend = area.len();
    let mut optoff = 0;
    while optoff < optend {
        match area[optoff] {
            0 => break,
            1 => optoff += 1,
            op0 => {
                if optoff + 1 == optend
                    || optoff + usize::from(area[optoff + 1]) > optend
                    || area[optoff + 1] < 2
                {
                    break;
                }
                if op0 == 8 && area[optoff + 1] == 10 {
                    found.push(optoff);
                }
                optoff += usize::from(area[optoff + 1]);
            }
        }
    }
    found
}

/// What `Options::parse(&out[..o.write(&mut out)])` must give: the fields `write` emits (those
/// whose bit is set, the window scale clamped as parsing does), nothing of ECN or
/// `mss_encode`, which travel in no option.
pub fn written(o: &Options) -> Options {
    let has = |bit: u8| o.options & bit != 0;
    Options {
        options: o.options & (OPT_MSS | OPT_WSCALE | OPT_SACK_PERM | OPT_TIMESTAMP),
        wscale: if has(OPT_WSCALE) { o.wscale.min(14) } else { 0 },
        mss_option: if has(OPT_MSS) { o.mss_option } else { 0 },
        mss_encode: 0,
        tsval: if has(OPT_TIMESTAMP) { o.tsval } else { 0 },
        tsecr: if has(OPT_TIMESTAMP) { o.tsecr } else { 0 },
    }
}

/// RFC 1071 as a receiver checks it: the 16-bit ones' complement sum of `parts` and `extra`,
/// checksum fields included (0xffff when they are right). Bytes are summed one at a time
/// into their column, unlike wire.rs.
pub fn sum16(parts: &[&[u8]], extra: u64) -> u16 {
    let mut acc = extra;
    for part in parts {
        for (i, &b) in part.iter().enumerate() {
            acc += u64::from(b) << if i % 2 == 0 { 8 } else { 0 };
        }
    }
    while acc > 0xffff {
        acc = (acc >> 16) + (acc & 0xffff);
    }
    acc as u16
}

/// [`sum16`] of a TCP segment with its pseudo-header.
pub fn ones_sum(saddr: &[u8], daddr: &[u8], segment: &[u8]) -> u16 {
    sum16(&[saddr, daddr, segment], 6 + segment.len() as u64)
}

/// The checksum field after a 32-bit word of the segment changed from `old` to `new`
/// (RFC 1624 eqn. 3, as `inet_proto_csum_replace4` does it).
pub fn csum_replace4(check: u16, old: u32, new: u32) -> u16 {
    let mut acc = u64::from(!check);
    for w in [!old, new] {
        acc += u64::from(w >> 16) + u64::from(w & 0xffff);
    }
    while acc > 0xffff {
        acc = (acc >> 16) + (acc & 0xffff);
    }
    !(acc as u16)
}

/// The checksum field of a segment (bytes 16..18).
pub fn check_field(segment: &[u8]) -> u16 {
    u16::from_be_bytes([segment[16], segment[17]])
}
