// SPDX-License-Identifier: GPL-2.0

//! The proxy: what the target does with client SYNs and ACKs, and what the hooks do with
//! the backend connection (`synproxy_tg4`, `ipv4_synproxy_hook` and their IPv6 twins in C,
//! here once for both families). Decisions come from [`crate::proto::flow`].

use crate::family::{Ip, Track};
use crate::glue::conntrack::{is_reply, Conn, SynproxyExt, TcpConn};
use crate::glue::net::Net;
use crate::glue::pending;
use crate::glue::skb::{Keep, Skb, Verdict};
use crate::glue::syncookie::Aligned;
use crate::pernet::NetState;
use crate::proto::flow::{self, Reply, Segment};
use crate::proto::info::{Info, OPT_TIMESTAMP};
use crate::proto::mismatch::{self, Mismatch, Report, Scale, Told, KINDS};
use crate::proto::stats::Stat;
use crate::proto::tcp::{self, Control, Dir, Header, Options, ACK, HDR_LEN, MAX_OPT_LEN, RST, SYN};
use crate::sys;
use kernel::prelude::*;

const DROP: Verdict = Verdict::Drop;
const ACCEPT: Verdict = Verdict::Accept;
/// We answered for the packet: the caller frees it (`skb::handle`).
const STOLEN: Verdict = Verdict::Consumed;

/// The TCP header of a packet, as read from it.
pub(crate) struct Tcp {
    /// Aligned copy of the fixed header, for the syncookie functions.
    pub(crate) raw: Aligned<HDR_LEN>,
    pub(crate) h: Header,
    pub(crate) opts: Options,
}

impl Tcp {
    /// Reads the header and options at `thoff`; `None` for a truncated packet or doff < 5.
    pub(crate) fn read(skb: &Skb, thoff: usize) -> Option<Tcp> {
        let (raw, h) = skb.read_array(thoff, |b: &[u8; HDR_LEN]| (Aligned(*b), Header::read(b)))?;
        let opts =
            skb.read_with::<MAX_OPT_LEN, _>(thoff + HDR_LEN, h.options_len()?, Options::parse)?;
        Some(Tcp { raw, h, opts })
    }
}

/// The fixed TCP header at `thoff`, read in place where it is linear; `None` if truncated.
#[inline]
pub(crate) fn read_header(skb: &Skb, thoff: usize) -> Option<Header> {
    skb.read_array(thoff, Header::read)
}

/// The fourth word of the fixed TCP header at `thoff`, read in place where it is linear;
/// `None` if the fixed header is truncated (as [`read_header`]).
#[inline]
pub(crate) fn read_control(skb: &Skb, thoff: usize) -> Option<Control> {
    skb.read_array(thoff, Control::read)
}

/// The IP header and the whole TCP header of a packet the proxy answers or follows (the
/// target's, the handshake's in the hook); `None` if truncated.
fn read_full(skb: &Skb, ipv6: bool, thoff: usize) -> Option<(Ip, Tcp)> {
    Some((Ip::read(skb, ipv6)?, Tcp::read(skb, thoff)?))
}

/// Milliseconds of the monotonic clock, as `tcp_clock_ms()`.
fn now_ms() -> u32 {
    // SAFETY: no preconditions.
    let ns = unsafe { sys::ktime_get() };
    (ns / 1_000_000) as u32
}

/// Sends `r` from `ip`'s source to its destination (or back, `reverse`) in a new packet.
fn send(net: &Net, skb: &Skb, ip: &Ip, reverse: bool, r: &Reply, ct: Track<'_>) {
    ip.send(net, skb, reverse, &r.header, &r.options, ct);
}

/// Answers for `skb` with `r` (see [`send`]), conntrack state `keep`: written over `skb`
/// where its data is its own (the usual case: no allocation, no free), else in a new packet.
/// `armed`: `r` is a backend SYN the pending slot was armed for; it stays armed until sent.
fn answer(
    net: &Net,
    skb: &mut Skb,
    ip: &Ip,
    reverse: bool,
    r: &Reply,
    keep: Keep<'_>,
    armed: Option<pending::Armed>,
) -> Verdict {
    if let Some(mut b) = skb.recycle(ip.reply_len(&r.options)) {
        if ip
            .build(&mut b, net, reverse, &r.header, &r.options)
            .is_none()
        {
            return DROP; // not reached: the length is the options'
        }
        let out = b.finish(net, keep, ip.is_v6());
        return Verdict::Send(match armed {
            Some(a) => {
                a.keep();
                out.disarming()
            }
            None => out,
        });
    }
    let ct = match keep {
        Keep::Own(ctinfo) => match Conn::of(skb) {
            Some((ct, _)) => Track::Entry(ct, ctinfo),
            None => Track::Untracked,
        },
        Keep::Entry(ct, ctinfo) => Track::Entry(ct, ctinfo),
    };
    send(net, skb, ip, reverse, r, ct);
    STOLEN
}

/// The xtables target: answers a client SYN with a cookie, turns a client ACK with a valid
/// cookie into a SYN to the backend; anything else goes on to the next rule.
pub(crate) fn target(
    skb: &mut Skb,
    net: &Net,
    st: &NetState,
    hook: u32,
    thoff: usize,
    ipv6: bool,
    info: &Info,
) -> Verdict {
    if !skb.tcp_checksum_ok(ipv6, hook, thoff) {
        return DROP;
    }
    let Some((ip, t)) = read_full(skb, ipv6, thoff) else {
        return DROP;
    };
    match flow::classify(&t.h) {
        Segment::Syn => {
            st.count(Stat::SynReceived);
            let mut r = flow::syn_ack(info, &t.h, t.opts, now_ms());
            r.header.seq = ip.cookie_init(&t.raw, r.options.mss_encode);
            // Written over the SYN where it can be ([`answer`]). As synproxy_send_client_synack,
            // the SYN-ACK carries the SYN's entry, if it has one, as ESTABLISHED_REPLY, so
            // conntrack in OUTPUT leaves it alone. A SYN with no entry (`CT --notrack`, the
            // recipe) gets an untracked SYN-ACK. C sends it with no entry instead: conntrack
            // in OUTPUT then looks it up, counts it invalid, or worse, attaches a CLOSE entry
            // of an earlier connection from the same port, whose seqadj shifts the cookie
            // (Documentation/differences.md).
            let est = sys::ip_conntrack_info_IP_CT_ESTABLISHED_REPLY;
            answer(net, skb, &ip, true, &r, Keep::Own(est), None)
        }
        Segment::Ack => {
            // The handshake's ACK (seq = ISN + 1), or else a zero-window probe (seq = ISN):
            // when that ACK was lost before a backend SYN went out (dropped on the way, or
            // the SYN could not be sent), the client, held at the SYN-ACK's zero window,
            // sends nothing but probes. C checks those as handshake ACKs, fails them all,
            // and the connection hangs for good (Documentation/differences.md, C bug 7).
            let (mss, probe) = match check_cookie(&ip, &t, false) {
                0 => {
                    let m = check_cookie(&ip, &t, true);
                    (m, m != 0)
                }
                m => (m, false),
            };
            let told = Told::from_ack(info, &t.opts);
            let v = backend_syn(st, net, skb, &ip, &t, probe, mss, Some(&told));
            if probe && v != DROP {
                st.count(Stat::CookieRetrans);
            }
            v
        }
        Segment::Other => Verdict::Continue,
    }
}

/// Checks the cookie of a client ACK and sends the backend SYN. `keepalive`: the ACK is a
/// keep-alive (seq = ISN) seen while that SYN is in flight; the hook's: its SYN keeps what the
/// client was told where the first SYN left it in the entry.
fn client_ack(
    st: &NetState,
    net: &Net,
    skb: &mut Skb,
    ip: &Ip,
    t: &Tcp,
    keepalive: bool,
) -> Verdict {
    let mss = check_cookie(ip, t, keepalive);
    backend_syn(st, net, skb, ip, t, keepalive, mss, None)
}

/// Counts the cookie check's result `mss` (0: invalid) of client ACK `t` and, if valid,
/// answers for it with the backend SYN (else DROP). `told`: what the cookie SYN-ACK told the
/// client, for the hook to keep in the entry.
#[allow(clippy::too_many_arguments)]
fn backend_syn(
    st: &NetState,
    net: &Net,
    skb: &mut Skb,
    ip: &Ip,
    t: &Tcp,
    keepalive: bool,
    mss: u16,
    told: Option<&Told>,
) -> Verdict {
    let isn = flow::client_isn(&t.h, keepalive);
    if mss == 0 {
        st.count(Stat::CookieInvalid);
        return DROP;
    }
    st.count(Stat::CookieValid);
    let r = flow::server_syn(&t.h, t.opts, mss, isn);
    // The hook takes it while the SYN is sent (glue::pending); disarmed once it is out.
    let its = (r.options.options & OPT_TIMESTAMP != 0).then_some(r.options.tsecr);
    let armed = told.map(|told| pending::arm(r.header.seq, r.header.ack_seq, told.stash(), its));
    let tmpl = Keep::Entry(st.template(), sys::ip_conntrack_info_IP_CT_NEW);
    answer(net, skb, ip, false, &r, tmpl, armed)
}

/// The MSS the cookie of client ACK `t` decodes to, 0 if invalid.
pub(crate) fn check_cookie(ip: &Ip, t: &Tcp, keepalive: bool) -> u16 {
    // The cookie functions take the client ISN as seq - 1 of the header they get: hand them
    // one whose seq is ISN + 1 (C passes the keep-alive's own header, off by one).
    let isn = flow::client_isn(&t.h, keepalive);
    let mut th = Aligned(t.raw.0);
    tcp::put(&mut th.0, 4, isn.wrapping_add(1).to_be_bytes());
    ip.cookie_check(&th)
}

/// The hook at LOCAL_IN and POST_ROUTING, just before conntrack confirms: follows entries
/// made from our template through the backend handshake, then keeps their timestamps
/// translated.
pub(crate) fn hook<'a>(
    skb: &mut Skb,
    net: &Net,
    st: impl Fn() -> &'a NetState,
    ipv6: bool,
) -> Verdict {
    // Every packet of every tracked connection in the namespace comes here, most of them on
    // entries that are not ours or long established: the tests are ordered for them, and of
    // their header only the fourth word is decoded (read in place). The handshake's few
    // packets go to [`handshake`], out of line, which reads the whole header, the options,
    // the IP header (addresses) and the namespace's state (`st`), as C does.
    let Some((tcp_ct, ctinfo, sp, thoff)) = Conn::hooked(skb, ipv6) else {
        return ACCEPT;
    };
    let state = tcp_ct.state();
    if matches!(
        state,
        sys::tcp_conntrack_TCP_CONNTRACK_CLOSE
            | sys::tcp_conntrack_TCP_CONNTRACK_SYN_SENT
            | sys::tcp_conntrack_TCP_CONNTRACK_SYN_RECV
    ) {
        return handshake(skb, net, st, ipv6, state);
    }
    let Some(c) = read_control(skb, thoff) else {
        return DROP;
    };
    let Some((its, tsoff)) = translating(tcp_ct.conn(), sp) else {
        return ACCEPT;
    };
    follow(skb, thoff, c, ctinfo, its, tsoff)
}

/// The hook's steps for an entry in the handshake's states (CLOSE, SYN_SENT, SYN_RECV; the
/// `state` the hook read): out of line, so that the established path's frame stays small.
#[inline(never)]
fn handshake<'a>(
    skb: &mut Skb,
    net: &Net,
    st: impl Fn() -> &'a NetState,
    ipv6: bool,
    mut state: u32,
) -> Verdict {
    // The entry the hook found (the packet has not changed since), looked up again: borrowed
    // from the packet, it could not be passed beside the packet's mutable borrow.
    let Some((tcp_ct, ctinfo, sp, thoff)) = Conn::hooked(skb, ipv6) else {
        return ACCEPT;
    };
    let ct = tcp_ct.conn();
    let reply = is_reply(ctinfo);
    let Some(h) = read_header(skb, thoff) else {
        return DROP;
    };
    if state == sys::tcp_conntrack_TCP_CONNTRACK_CLOSE {
        if h.flags & RST != 0 && reply {
            // The backend refused our SYN: the client must see the RST at our ISN + 1. An
            // entry already translating is a reset of an established connection, whose
            // translation is already right.
            if !ct.seq_adjusting() {
                // The connection failed before the backend answered: what the client was
                // told (tsoff) is of no use any more, and a translating entry must not take
                // it for a timestamp offset.
                sp.set_tsoff(0);
                sp.set_its(0);
                ct.seqadj_init(ctinfo, flow::rst_offset(sp.isn(), h.seq));
            }
        } else if h.has(SYN, ACK) && !reply {
            // A new connection on this entry: drop the old one's translations. (C resets
            // with nf_ct_seqadj_init(ct, dir, 0), which does nothing.)
            ct.seqadj_reset();
            sp.set_tsoff(0);
            st().count(Stat::ConnReopened);
            state = sys::tcp_conntrack_TCP_CONNTRACK_SYN_SENT;
        }
    }
    match state {
        // Our backend SYN, sent by the target a few calls up this stack: what the target
        // knew (the TSecr it sent, what the client was told, kept until the backend
        // answers) comes with it, and the packet is not read again.
        sys::tcp_conntrack_TCP_CONNTRACK_SYN_SENT
            if !reply && h.has(SYN, ACK) && sent_by_target(sp, &h) =>
        {
            ct.event(sys::RSYNPROXY_IPCT_SYNPROXY);
        }
        sys::tcp_conntrack_TCP_CONNTRACK_SYN_SENT => {
            let Some((ip, t)) = read_full(skb, ipv6, thoff) else {
                return DROP;
            };
            if t.h.has(ACK, SYN) && !reply {
                // A client keep-alive while our SYN is in flight: send the SYN again.
                let st = st();
                let v = client_ack(st, net, skb, &ip, &t, true);
                if v != DROP {
                    st.count(Stat::CookieRetrans);
                }
                return v;
            }
            sp.set_isn(t.h.ack_seq);
            if t.opts.options & OPT_TIMESTAMP != 0 {
                sp.set_its(t.opts.tsecr);
            }
            // A backend SYN the target did not arm (the keep-alive's resend above arms
            // none): nothing was stashed for it.
            ct.event(sys::RSYNPROXY_IPCT_SYNPROXY);
        }
        sys::tcp_conntrack_TCP_CONNTRACK_SYN_RECV if h.has(SYN | ACK, 0) => {
            let Some((ip, t)) = read_full(skb, ipv6, thoff) else {
                return DROP;
            };
            let r = backend_synack(st(), net, skb, &ip, &t, tcp_ct, ctinfo, sp);
            let est = sys::ip_conntrack_info_IP_CT_ESTABLISHED_REPLY;
            return answer(net, skb, &ip, false, &r, Keep::Own(est), None);
        }
        _ => {}
    }
    let Some((its, tsoff)) = translating(ct, sp) else {
        return ACCEPT;
    };
    follow(skb, thoff, h.control(), ctinfo, its, tsoff)
}

/// The entry's `(its, tsoff)` once the backend has answered (its: the window translation,
/// tsoff: the timestamp offset), read before the packet is written; `None` until then, when
/// tsoff holds what the client was told and its the cookie's TSval, neither an offset nor a
/// scale yet (C: tsoff is 0 until then).
#[inline(always)]
fn translating(ct: &Conn, sp: &SynproxyExt) -> Option<(u32, u32)> {
    ct.seq_adjusting().then(|| (sp.its(), sp.tsoff()))
}

/// Rewrites segment `c` of a translating entry ([`translating`]): the window (backend
/// segments to the client, when the scales differ), then the timestamps.
#[inline(always)]
fn follow(skb: &mut Skb, thoff: usize, c: Control, ctinfo: u32, its: u32, tsoff: u32) -> Verdict {
    let reply = is_reply(ctinfo);
    // Window fields of SYNs are never scaled (RFC 7323): a retransmitted SYN-ACK keeps its.
    if reply && c.flags() & SYN == 0 {
        if let Some(scale) = Scale::decode(its) {
            if translate_window(skb, thoff, c, scale) == DROP {
                return DROP;
            }
        }
    }
    adjust_timestamps(skb, thoff, c, tsoff, reply)
}

/// Whether backend SYN `h` is the one the target armed the pending slot for: if so, records
/// in the entry what the hook's SYN_SENT step would have read from it.
fn sent_by_target(sp: &SynproxyExt, h: &Header) -> bool {
    let Some(p) = pending::take(h.seq, h.ack_seq) else {
        return false;
    };
    sp.set_isn(h.ack_seq);
    if let Some(its) = p.its {
        sp.set_its(its);
    }
    if p.stash != 0 {
        sp.set_tsoff(p.stash);
    }
    true
}

/// Rewrites the window of a backend-to-client segment into the scale the client was told.
pub(crate) fn translate_window(skb: &mut Skb, thoff: usize, c: Control, scale: Scale) -> Verdict {
    let win = scale.translate(c.window());
    if win == c.window() {
        return ACCEPT;
    }
    let Some(mut w) = skb.writable(thoff + HDR_LEN) else {
        return DROP;
    };
    // Offset 12: data offset, flags and window, one aligned word of the checksum.
    let Some(field) = w.bytes().get_mut(thoff + 12..thoff + 16) else {
        return DROP;
    };
    let Ok(field): Result<&mut [u8; 4], _> = field.try_into() else {
        return DROP;
    };
    let old = u32::from_be_bytes(*field);
    let new = mismatch::with_window(old, win);
    *field = new.to_be_bytes();
    if w.csum_replace4(thoff + 16, old, new) {
        ACCEPT
    } else {
        DROP
    }
}

/// Compares the backend's SYN-ACK options with what the client was told (left in `tsoff`
/// by the SYN_SENT step), counts and logs each mismatch, and returns the window
/// translation the connection needs.
fn check_backend(st: &NetState, ip: &Ip, t: &Tcp, sp: &SynproxyExt) -> Option<Scale> {
    let told = Told::unstash(sp.tsoff())?;
    let m = Mismatch::find(told, Told::from_options(&t.opts));
    if m.kinds == 0 {
        return None;
    }
    for k in KINDS {
        if m.has(k) {
            st.count_mismatch(k);
        }
    }
    if pending::may_log() {
        let report = Report {
            backend: ip.source(),
            port: t.h.sport,
            m: &m,
        };
        pr_info!("{}\n", format_args!("{report}"));
    }
    m.scale()
}

/// The backend's SYN-ACK: ACK it and start translating; returns the window update for the
/// client, which the caller sends in its place (after this, so that it goes out translated).
#[allow(clippy::too_many_arguments)]
fn backend_synack(
    st: &NetState,
    net: &Net,
    skb: &Skb,
    ip: &Ip,
    t: &Tcp,
    tcp_ct: &TcpConn,
    ctinfo: u32,
    sp: &SynproxyExt,
) -> Reply {
    let ct = tcp_ct.conn();
    let max_win = tcp_ct.client_max_window() as u16;
    let e = flow::established(&t.h, t.opts, sp.its(), max_win);
    // `its` has served (the offset is in `e`): from now on it holds the window translation,
    // read only once the entry translates sequence numbers (below), so by every later
    // backend segment and by the window update sent at the end of this function.
    let scale = check_backend(st, ip, t, sp);
    sp.set_its(scale.map_or(0, |s| s.encode()));
    // The ACK's TSecr is the backend's own TSval: send it before the offset exists, or the
    // POST_ROUTING hook would shift it a second time (C sets tsoff first).
    send(net, skb, ip, true, &e.server_ack, Track::Lookup);
    // Always written: it held what the client was told until now.
    sp.set_tsoff(e.tsoff.unwrap_or(0));
    ct.event(sys::RSYNPROXY_IPCT_SYNPROXY);
    // After the backend ACK, so that it goes out untranslated.
    let off = flow::seq_offset(sp.isn(), t.h.seq);
    ct.seqadj_init(ctinfo, off);
    if off == 0 {
        // nf_ct_seqadj_init sets nothing for 0; the hook reads the bit as "answered".
        ct.seq_adjust_on();
    }
    ct.event(sys::RSYNPROXY_IPCT_SEQADJ);
    e.client_ack
}

/// Shifts the timestamps of an established connection between the backend's clock and ours.
/// Always inlined: the KUnit and bench builds call it directly too, and with a second caller
/// the compiler left it out of line in the hook, which made the bench time another hook.
#[inline(always)]
pub(crate) fn adjust_timestamps(
    skb: &mut Skb,
    thoff: usize,
    c: Control,
    tsoff: u32,
    reply: bool,
) -> Verdict {
    if tsoff == 0 {
        return ACCEPT;
    }
    // No option area (doff 5), or a malformed header (doff < 5): nothing to shift.
    let doff = usize::from(c.doff());
    if doff <= 5 {
        return ACCEPT;
    }
    let optlen = doff * 4 - HDR_LEN;
    let dir = if reply { Dir::Reply } else { Dir::Original };
    let start = thoff + HDR_LEN;
    let end = start + optlen;
    let Some(mut w) = skb.writable(end) else {
        return DROP;
    };
    // One option at a time, its checksum update right after it: no list of changes.
    let mut i = 0;
    loop {
        let Some(opts) = w.bytes().get_mut(start..end) else {
            return DROP;
        };
        let Some((at, old, new)) = tcp::shift_timestamp(opts, &mut i, dir, tsoff) else {
            return ACCEPT;
        };
        if !w.csum_replace4(thoff + 16, tcp::csum_word(old, at), tcp::csum_word(new, at)) {
            return DROP;
        }
        if i >= optlen {
            // The area is walked (the usual NOP NOP TS alone, say): no need to look again.
            return ACCEPT;
        }
    }
}
