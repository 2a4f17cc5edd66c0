// SPDX-License-Identifier: GPL-2.0

//! The counters and the text of `/proc/net/stat/rsynproxy`, byte for byte the format of
//! `/proc/net/stat/synproxy` so that existing collectors (netdata, collectd) can read it.

/// One counter; the discriminant is the column and the index into the per-CPU array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Stat {
    /// Client SYNs answered with a cookie.
    SynReceived = 0,
    /// ACKs whose cookie did not check.
    CookieInvalid = 1,
    /// ACKs whose cookie checked: a backend connection was opened.
    CookieValid = 2,
    /// Client ACKs retransmitted while the backend SYN was in flight.
    CookieRetrans = 3,
    /// Closed connections reopened by a new SYN.
    ConnReopened = 4,
}

/// Number of counters of `/proc/net/stat/rsynproxy`.
pub const NSTATS: usize = 5;

/// Counters per CPU in all: those of `/proc/net/stat/rsynproxy`, then one per
/// [`super::mismatch::Kind`] (`/proc/net/stat/rsynproxy_mismatch`).
pub const NCOUNTERS: usize = NSTATS + super::mismatch::NKINDS;

/// The per-CPU index of a mismatch kind's counter.
pub fn mismatch_index(k: super::mismatch::Kind) -> usize {
    NSTATS + k as usize
}

/// Splits one CPU's counters into the two files' columns.
pub fn split(all: &[u32; NCOUNTERS]) -> ([u32; NSTATS], [u32; super::mismatch::NKINDS]) {
    let mut a = [0; NSTATS];
    let mut b = [0; super::mismatch::NKINDS];
    // Element by element: `copy_from_slice` would leave a length-mismatch panic call in the
    // module, whose fall-through objtool reports (it does not know the panic never returns).
    for (to, from) in a.iter_mut().chain(b.iter_mut()).zip(all) {
        *to = *from;
    }
    (a, b)
}

/// The header line.
pub const HEADER: &[u8] =
    b"entries\t\tsyn_received\tcookie_invalid\tcookie_valid\tcookie_retrans\tconn_reopened\n";

/// Length of one CPU's line: six `%08x` columns, each followed by a tab or the newline.
pub const LINE_LEN: usize = 6 * 9;

/// Formats one CPU's line (of either file: both have five counters) as C's `"%08x\t%08x\t%08x\t%08x\t%08x\t%08x\n"` with `entries`
/// (always 0: the proxy keeps no table) first.
pub fn format_line(counts: &[u32; NSTATS]) -> [u8; LINE_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; LINE_LEN];
    let columns = core::iter::once(0u32).chain(counts.iter().copied());
    for (col, (value, chunk)) in columns.zip(out.chunks_exact_mut(9)).enumerate() {
        for (i, digit) in chunk[..8].iter_mut().enumerate() {
            *digit = HEX[((value >> (28 - 4 * i)) & 0xf) as usize];
        }
        chunk[8] = if col == NSTATS { b'\n' } else { b'\t' };
    }
    out
}
