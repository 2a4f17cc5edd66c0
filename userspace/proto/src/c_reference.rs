//! Line-by-line transcriptions of nf_synproxy_core.c, the reference the property tests and
//! the fuzz targets (userspace/proto/fuzz) hold the Rust code to. Host-only: the module
//! builds rust/proto, never this crate.

use crate::info::{OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use crate::tcp::Options;

/// `synproxy_parse_options`, transcribed: `length` counts down, `ptr` walks on.
pub fn c_parse(area: &[u8]) -> Options {
    let mut o = Options::default();
    let mut length = area.len() as isize;
    let mut ptr = 0;
    while length > 0 {
        let opcode = area[ptr];
        ptr += 1;
        match opcode {
            0 => return o,
            1 => {
                length -= 1;
                continue;
            }
            _ => {
                if length < 2 {
                    return o;
                }
                let opsize = isize::from(area[ptr]);
                ptr += 1;
                if opsize < 2 || opsize > length {
                    return o;
                }
                let b = &area[ptr..];
                match (opcode, opsize) {
                    (2, 4) => {
                        o.mss_option = u16::from_be_bytes([b[0], b[1]]);
                        o.options |= OPT_MSS;
                    }
                    (3, 3) => {
                        o.wscale = if b[0] > 14 { 14 } else { b[0] };
                        o.options |= OPT_WSCALE;
                    }
                    (8, 10) => {
                        o.tsval = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        o.tsecr = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                        o.options |= OPT_TIMESTAMP;
                    }
                    (4, 2) => o.options |= OPT_SACK_PERM,
                    _ => {}
                }
                ptr += opsize as usize - 2;
                length -= opsize;
            }
        }
    }
    o
}
