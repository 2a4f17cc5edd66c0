// SPDX-License-Identifier: GPL-2.0

//! The decisions of each step of the proxy, as pure functions of what the packets carry.
//! The kernel glue reads packets, calls these, and sends what they describe.
//!
//! ```text
//! client                 proxy                    server
//!   SYN ───────────────▶ target: syn_ack()
//!       ◀─────────────── SYN-ACK (cookie ISN, TS cookie)
//!   ACK ───────────────▶ target: cookie check, server_syn()
//!                        SYN ───────────────────▶  (conntrack entry from the template)
//!                        hook SYN_RECV ◀───────── SYN-ACK
//!                        server_ack() ──────────▶ ACK
//!       ◀─────────────── client_ack()   (window update; seqadj and tsoff from now on)
//! ```

use super::cookie;
use super::info::{Info, OPT_ECN, OPT_MSS, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE};
use super::tcp::{Header, Options, ACK, CWR, ECE, FIN, RST, SYN};

/// What the target does with a segment it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// A client's first SYN: answer with a cookie.
    Syn,
    /// A bare ACK (maybe with data): check the cookie and open the backend connection.
    Ack,
    /// Anything else: not ours, continue with the next rule.
    Other,
}

/// Classifies a segment by its flags, as the C target does.
pub fn classify(h: &Header) -> Segment {
    if h.has(SYN, ACK | FIN | RST) {
        Segment::Syn
    } else if h.has(ACK, FIN | RST | SYN) {
        Segment::Ack
    } else {
        Segment::Other
    }
}

/// A segment to send, with its options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The TCP header (ports already in the direction of travel).
    pub header: Header,
    /// Its options.
    pub options: Options,
}

/// The SYN-ACK answering client SYN `h` with options `client`. Its sequence number is left
/// 0 for the caller to fill with the syncookie, computed over the client MSS in
/// `options.mss_encode`.
pub fn syn_ack(info: &Info, h: &Header, mut client: Options, now_ms: u32) -> Reply {
    if h.has(ECE | CWR, 0) {
        client.options |= OPT_ECN;
    }
    client.options &= info.options;
    client.mss_encode = client.mss_option;
    client.mss_option = info.mss;
    if client.options & OPT_TIMESTAMP != 0 {
        cookie::encode(info, &mut client, now_ms);
    } else {
        // Without a timestamp there is nowhere to keep them.
        client.options &= !(OPT_WSCALE | OPT_SACK_PERM | OPT_ECN);
    }
    let mut flags = SYN | ACK;
    if client.options & OPT_ECN != 0 {
        flags |= ECE;
    }
    Reply {
        header: Header {
            sport: h.dport,
            dport: h.sport,
            seq: 0,
            ack_seq: h.seq.wrapping_add(1),
            doff: 0,
            flags,
            // Nothing may be sent before the backend has said what it accepts.
            window: 0,
        },
        options: client,
    }
}

/// The SYN to the backend for a client ACK `h` whose cookie decoded to `mss`; `client_isn` is
/// the client's initial sequence number. The acknowledgment field carries our cookie ISN to
/// the hook (which records it before the backend answers).
pub fn server_syn(h: &Header, mut o: Options, mss: u16, client_isn: u32) -> Reply {
    o.mss_option = mss;
    o.options |= OPT_MSS;
    if o.options & OPT_TIMESTAMP != 0 {
        cookie::decode(&mut o);
    }
    let mut flags = SYN;
    if o.options & OPT_ECN != 0 {
        flags |= ECE | CWR;
    }
    Reply {
        header: Header {
            sport: h.sport,
            dport: h.dport,
            seq: client_isn,
            ack_seq: h.ack_seq.wrapping_sub(1),
            doff: 0,
            flags,
            window: h.window,
        },
        options: o,
    }
}

/// The client's ISN as the cookie check must see it, for an ACK completing the handshake
/// (`seq` = ISN + 1) or for a keep-alive while the backend SYN is in flight (`seq` = ISN;
/// TCP keep-alives are sent with SND.NXT - 1).
pub fn client_isn(h: &Header, keepalive: bool) -> u32 {
    if keepalive {
        h.seq
    } else {
        h.seq.wrapping_sub(1)
    }
}

/// The backend's SYN-ACK, parsed: the timestamp offset to apply from now on (our cookie
/// clock `its` against the backend's), and the two segments that finish both handshakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Established {
    /// Backend TSval minus ours, when timestamps are on.
    pub tsoff: Option<u32>,
    /// ACK to the backend (its TSecr already in the backend's clock).
    pub server_ack: Reply,
    /// Window update to the client (its TSval still in the backend's clock, for the
    /// timestamp translation to bring into ours).
    pub client_ack: Reply,
}

/// Both ACKs for the backend SYN-ACK `h` with options `o`; `its` is the TSval of our cookie,
/// `max_win` the largest window the client announced (conntrack's `td_maxwin`).
pub fn established(h: &Header, mut o: Options, its: u32, max_win: u16) -> Established {
    let tsoff = (o.options & OPT_TIMESTAMP != 0).then(|| o.tsval.wrapping_sub(its));
    o.options &= !(OPT_MSS | OPT_WSCALE | OPT_SACK_PERM);
    let server_wscale = o.wscale;
    let mut to_server = o;
    to_server.tsval = o.tsecr;
    to_server.tsecr = o.tsval;
    Established {
        tsoff,
        server_ack: Reply {
            header: Header {
                sport: h.dport,
                dport: h.sport,
                seq: h.ack_seq,
                ack_seq: h.seq.wrapping_add(1),
                doff: 0,
                flags: ACK,
                window: max_win,
            },
            options: to_server,
        },
        client_ack: Reply {
            header: Header {
                sport: h.sport,
                dport: h.dport,
                seq: h.seq.wrapping_add(1),
                ack_seq: h.ack_seq,
                doff: 0,
                flags: ACK,
                window: h.window.checked_shr(u32::from(server_wscale)).unwrap_or(0),
            },
            options: o,
        },
    }
}

/// The seqadj offset for a backend RST answering our SYN: the client must see it at our
/// cookie ISN + 1 (the backend's RST to a SYN carries seq 0 or its own choice).
pub fn rst_offset(isn: u32, rst_seq: u32) -> i32 {
    isn.wrapping_sub(rst_seq).wrapping_add(1) as i32
}

/// The seqadj offset once the backend's ISN is known.
pub fn seq_offset(isn: u32, server_isn: u32) -> i32 {
    isn.wrapping_sub(server_isn) as i32
}
