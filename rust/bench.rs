// SPDX-License-Identifier: GPL-2.0

//! The per-packet cost of each path, timed in the kernel on prepared packets: RSYNPROXY
//! against the in-tree C SYNPROXY, IPv4 and IPv6, with no traffic generator in the timing.
//!
//! Bench builds only (`make BENCH=1`: cfg `rsynproxy_bench`, C helpers in `sys/bench.c`); the
//! production module, DKMS and the packages have none of it.
//!
//! # Control file `/proc/rsynproxy_bench` (root only)
//!
//! One command per write; each acts in the namespace of the writing process (the proxy's).
//! A read returns the lines the last command produced.
//!
//! - `arm`: registers the capture hooks (FORWARD, first of all, IPv4 and IPv6) and steals the
//!   next client SYN and client ACK to port [`PORT`] of each family as templates (the guest
//!   script sends them with scapy). `status` then reads `syn4 ack4 syn6 ack6` as 0/1.
//! - `run TARGET N`: TARGET `rsynproxy`, `synproxy` or `floor`; N iterations per path and
//!   family. The target's rules must be the only proxy rules in the namespace (its hooks must
//!   be the only ones registered). Lines: `TARGET PATH FAMILY MEAN OK N SUBMED`: MEAN the total
//!   time over N in ns per packet, OK the packets that got the expected verdict, SUBMED the
//!   median sub-batch's ns per packet; `# ...` notes.
//! - `disarm`: unregisters the hooks and frees the templates (also done at unload).
//!
//! # What is timed
//!
//! Each packet is prepared before the timing (a private linear copy of a template, rewritten
//! where the path needs it, checksum verified as a NIC's receive offload leaves it). The
//! calls run in sub-batches of [`SUB`] packets with BHs disabled and under `rcu_read_lock`,
//! as the stack calls targets and hooks; `ktime_get` is read inside, so the softirq work the
//! sent packets cause (the receivers' stacks) runs between sub-batches, outside the timing.
//! Both targets are reached the same way: the target through its registered `xt_target`
//! (`xt_request_find_target`), the hook through a function pointer.
//!
//! - `syn`: client SYN → cookie SYN-ACK built, routed and sent.
//! - `ack`: client ACK with a valid cookie (a new source port and ISN each, cookies computed
//!   beforehand) → backend SYN sent with the template, a new conntrack entry each. Meanwhile
//!   the capture hook steals the backend's SYN-ACKs (entries in SYN_RECV) for `synack`.
//! - `synack`: each stolen SYN-ACK through the hook (POST_ROUTING): ACK to the backend,
//!   window update to the client, seqadj and timestamp offset set up.
//! - `established`: copies of one of those SYN-ACKs turned into a plain ACK of the now
//!   established entry, through the hook (timestamp translation).
//! - floor, `syn` only: allocate a reply of the SYN-ACK's size, write its headers, checksum
//!   as C leaves it, route and send: the work no SYN proxy can skip.
//!
//! Each timed run is also a window of the instruction count (`make bench` part `insns`): its
//! sub-batches' calls are bracketed by markers a QEMU plugin recognises ([`mark`]), and the
//! run's line is preceded by `# window K TARGET PATH FAMILY N`.

use crate::glue::net::Net;
use crate::glue::syncookie::{self, Aligned};
use crate::glue::{hooks, CShared};
use crate::proto::tcp::{ACK, HDR_LEN, SYN};
use crate::proto::wire::{IPV4_LEN, IPV6_LEN};
use crate::sys;
use core::cell::UnsafeCell;
use core::fmt::Write;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::ffi::{c_char, c_uint, c_void};
use kernel::prelude::*;

/// The backend port the prepared connections go to (a listener in the backend answers).
pub(crate) const PORT: u16 = 9000;
/// Packets per sub-batch with BHs disabled.
const SUB: usize = 16;
/// The MSS of the recipe and of the template SYNs (the backend's on a 1500-byte link), per
/// family: an MSS the backend does not announce would make RSYNPROXY count (and log) a
/// mismatch on every connection.
const fn mss(v6: bool) -> u16 {
    if v6 {
        1440
    } else {
        1460
    }
}

// Capture modes.
const OFF: u32 = 0;
/// Steal client SYNs and ACKs to PORT (templates).
const CLIENT: u32 = 1;
/// Steal the backend's SYN-ACKs from PORT whose entry is in SYN_RECV.
const SYNACK: u32 = 2;
/// Enough stolen: drop further such SYN-ACKs (retransmissions) so that no proxy hook answers
/// them before the replay.
const HOLD: u32 = 3;

static MODE: AtomicU32 = AtomicU32::new(OFF);
/// Serialises the control file's commands and guards [`CTL`].
static BUSY: AtomicBool = AtomicBool::new(false);

/// A packet the bench owns; freed on drop.
///
/// # Invariants
///
/// `0` is a live skb owned by this value alone.
struct Pkt(NonNull<sys::sk_buff>);

impl Pkt {
    /// Takes ownership of `skb` (may be NULL).
    ///
    /// # Safety
    ///
    /// A non-null `skb` is live and owned by the caller, who gives it up.
    unsafe fn from_raw(skb: *mut sys::sk_buff) -> Option<Self> {
        NonNull::new(skb).map(Pkt)
    }

    fn as_ptr(&self) -> *mut sys::sk_buff {
        self.0.as_ptr()
    }

    /// Gives the packet up (to a callee that consumed it).
    fn into_raw(self) -> *mut sys::sk_buff {
        let p = self.0.as_ptr();
        core::mem::forget(self);
        p
    }

    /// A private linear copy (`skb_copy`: its own data, a reference on the route and the
    /// conntrack entry).
    fn copy(&self) -> Option<Pkt> {
        // SAFETY: the packet is live (type invariant); process context may sleep.
        let c = unsafe { sys::skb_copy(self.as_ptr(), sys::RSYNPROXY_GFP_KERNEL) };
        // SAFETY: a new skb or NULL, ours.
        unsafe { Pkt::from_raw(c) }
    }

    /// The packet's bytes from its network header, if linear.
    fn bytes(&self) -> Option<&[u8]> {
        // SAFETY: the packet is live and ours (type invariant); a packet with no paged data
        // has `len` bytes at `data`, and we hand out no mutable access while this borrow lives.
        unsafe {
            let s = &*self.as_ptr();
            (s.data_len == 0).then(|| core::slice::from_raw_parts(s.data, s.len as usize))
        }
    }

    /// As [`Pkt::bytes`], mutable. Only for copies the bench made (private data).
    fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        // SAFETY: as in `bytes`; `&mut self` makes the borrow exclusive, and the data of a
        // copy from `skb_copy` is not shared with another skb.
        unsafe {
            let s = &*self.as_ptr();
            (s.data_len == 0).then(|| core::slice::from_raw_parts_mut(s.data, s.len as usize))
        }
    }

    /// Recomputes the TCP checksum and marks it verified (receive offload).
    fn csum_rx(&mut self, thoff: usize) {
        // SAFETY: the packet is ours, linear (a copy), with a TCP header at `thoff`.
        unsafe { sys::rsynproxy_bench_csum_rx(self.as_ptr(), thoff as u32) };
    }

    /// Cuts the packet to its first `len` bytes.
    fn trim(&mut self, len: usize) {
        // SAFETY: the packet is ours (type invariant); skb_trim does nothing for a longer len.
        unsafe { sys::skb_trim(self.as_ptr(), len as u32) };
    }

    /// The TCP state of the packet's entry, if it has a TCP one.
    fn ct_state(&self) -> Option<u32> {
        // SAFETY: the packet is live (type invariant).
        let s = unsafe { sys::rsynproxy_bench_ct_state(self.as_ptr()) };
        u32::try_from(s).ok()
    }

    /// The address of the packet's entry (NULL without one), to tell entries apart.
    fn ct(&self) -> usize {
        // SAFETY: the packet is live (type invariant).
        unsafe { sys::rsynproxy_bench_ct(self.as_ptr()) as usize }
    }
}

impl Drop for Pkt {
    fn drop(&mut self) {
        // SAFETY: ours alone (type invariant) and not given up (into_raw forgets).
        unsafe { sys::rsynproxy_free_skb(self.as_ptr()) };
    }
}

/// What a capture hook reads of a TCP packet.
struct Peek {
    v6: bool,
    thoff: usize,
    sport: u16,
    dport: u16,
    /// FIN, SYN, RST and ACK.
    flags: u8,
}

/// Reads IP and TCP header fields with `skb_copy_bits`; `None` if not plain TCP.
fn peek_raw(skb: *mut sys::sk_buff) -> Option<Peek> {
    let mut b = [0u8; IPV6_LEN + 14];
    // SAFETY: `skb` is the live packet of the running hook or a packet we own; the copy is
    // bounds-checked and writes at most the buffer.
    let read = |off: usize, out: &mut [u8]| unsafe {
        sys::skb_copy_bits(skb, off as i32, out.as_mut_ptr().cast(), out.len() as i32) == 0
    };
    if !read(0, &mut b[..1]) {
        return None;
    }
    let (v6, thoff) = match b[0] >> 4 {
        4 => {
            if !read(0, &mut b[..IPV4_LEN]) || b[9] != 6 {
                return None;
            }
            (false, usize::from(b[0] & 0xf) * 4)
        }
        6 => {
            if !read(0, &mut b[..IPV6_LEN]) || b[6] != 6 {
                return None;
            }
            (true, IPV6_LEN)
        }
        _ => return None,
    };
    let mut t = [0u8; 14];
    if !read(thoff, &mut t) {
        return None;
    }
    Some(Peek {
        v6,
        thoff,
        sport: u16::from_be_bytes([t[0], t[1]]),
        dport: u16::from_be_bytes([t[2], t[3]]),
        flags: t[13] & 0x17,
    })
}

/// The capture hook (FORWARD, first priority), in the armed namespace only.
///
/// # Safety
///
/// Called by netfilter with a live skb it hands over until the verdict.
unsafe extern "C" fn capture(
    _priv: *mut c_void,
    skb: *mut sys::sk_buff,
    _state: *const sys::nf_hook_state,
) -> c_uint {
    let mode = MODE.load(Ordering::Relaxed);
    if mode == OFF {
        return sys::NF_ACCEPT;
    }
    let Some(p) = peek_raw(skb) else {
        return sys::NF_ACCEPT;
    };
    let take = match mode {
        CLIENT => p.dport == PORT && (p.flags == SYN || p.flags == ACK),
        _ => {
            // SAFETY: the hook's packet, live for the call.
            let st = unsafe { sys::rsynproxy_bench_ct_state(skb) };
            p.sport == PORT
                && p.flags == SYN | ACK
                && u32::try_from(st) == Ok(sys::tcp_conntrack_TCP_CONNTRACK_SYN_RECV)
        }
    };
    if !take {
        return sys::NF_ACCEPT;
    }
    if mode == HOLD {
        return sys::NF_DROP;
    }
    // SAFETY: netfilter gave us the packet; after NF_STOLEN it is ours, kept in the queue.
    unsafe { sys::rsynproxy_bench_stash(skb) };
    sys::NF_STOLEN
}

const fn capture_ops() -> [sys::nf_hook_ops; 2] {
    // SAFETY: all-zero is a valid nf_hook_ops.
    let mut ops: [sys::nf_hook_ops; 2] = unsafe { core::mem::zeroed() };
    let pfs = [sys::NFPROTO_IPV4, sys::NFPROTO_IPV6];
    let mut i = 0;
    while i < 2 {
        ops[i].hook = Some(capture);
        ops[i].pf = pfs[i] as u8;
        ops[i].hooknum = sys::nf_inet_hooks_NF_INET_FORWARD;
        ops[i].priority = i32::MIN;
        i += 1;
    }
    ops
}

static CAPTURE_OPS: CShared<[sys::nf_hook_ops; 2]> = CShared::new(capture_ops());

/// The control state, reached only by the holder of [`BUSY`] (and by unload, after the
/// control file is gone).
struct Ctl {
    /// The armed namespace (with a reference), or NULL.
    net: *mut sys::net,
    /// Templates per family: client SYN, client ACK.
    tmpl: Templates,
    out: Out,
    runs: u32,
}

type Templates = [[Option<Pkt>; 2]; 2];

/// The lines of the last command.
struct Out {
    buf: [u8; 4096],
    len: usize,
}

struct CtlCell(UnsafeCell<Ctl>);

// SAFETY: the contents are reached only by whoever set BUSY (the control file's commands,
// one at a time) or by unload, after proc_remove has waited for every command.
unsafe impl Sync for CtlCell {}

const NO_PKT: Option<Pkt> = None;
const NO_PAIR: [Option<Pkt>; 2] = [NO_PKT; 2];
static CTL: CtlCell = CtlCell(UnsafeCell::new(Ctl {
    net: core::ptr::null_mut(),
    tmpl: [NO_PAIR; 2],
    out: Out {
        buf: [0; 4096],
        len: 0,
    },
    runs: 0,
}));

impl Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl Ctl {
    fn net(&self) -> Option<&Net> {
        // SAFETY: a non-null `net` carries our reference, so it lives while armed.
        (!self.net.is_null()).then(|| unsafe { Net::from_raw(self.net) })
    }

    fn arm(&mut self) -> Result {
        self.disarm();
        // SAFETY: process context; returns the writer's namespace with a reference.
        let net = unsafe { sys::rsynproxy_bench_current_net() };
        // SAFETY: we hold a reference on it.
        if let Err(e) = hooks::register(unsafe { Net::from_raw(net) }, &CAPTURE_OPS) {
            // SAFETY: the reference taken above.
            unsafe { sys::rsynproxy_bench_put_net(net) };
            return Err(e);
        }
        self.net = net;
        MODE.store(CLIENT, Ordering::Relaxed);
        Ok(())
    }

    fn disarm(&mut self) {
        MODE.store(OFF, Ordering::Relaxed);
        if let Some(net) = self.net() {
            // Waits for running hooks: nothing stashes after this.
            hooks::unregister(net, &CAPTURE_OPS);
            // SAFETY: the reference `arm` took.
            unsafe { sys::rsynproxy_bench_put_net(self.net) };
            self.net = core::ptr::null_mut();
        }
        drain();
        self.tmpl = [NO_PAIR; 2];
    }

    /// Moves captured client SYNs and ACKs into the template slots.
    fn collect(&mut self) {
        for p in drain_vec() {
            let Some(h) = peek_raw(p.as_ptr()) else {
                continue;
            };
            let slot = &mut self.tmpl[usize::from(h.v6)][usize::from(h.flags == ACK)];
            if slot.is_none() {
                *slot = Some(p);
            }
        }
        if self.tmpl.iter().flatten().all(Option::is_some) {
            MODE.store(OFF, Ordering::Relaxed);
        }
    }
}

/// `got` and the packets captured since, one per conntrack entry (the others freed).
fn one_per_entry(mut got: KVec<Pkt>) -> Result<KVec<Pkt>> {
    for p in drain_vec() {
        got.push(p, GFP_KERNEL)?;
    }
    got.sort_unstable_by_key(Pkt::ct);
    let mut out = KVec::with_capacity(got.len(), GFP_KERNEL)?;
    let mut last = 0;
    for p in got {
        if p.ct() != last {
            last = p.ct();
            out.push(p, GFP_KERNEL)?;
        }
    }
    Ok(out)
}

/// Frees every captured packet.
fn drain() {
    // SAFETY: the queue holds packets only the bench owns.
    while let Some(p) = unsafe { Pkt::from_raw(sys::rsynproxy_bench_take()) } {
        drop(p);
    }
}

/// Takes every captured packet.
fn drain_vec() -> KVec<Pkt> {
    let mut v = KVec::new();
    // SAFETY: as in `drain`.
    while let Some(p) = unsafe { Pkt::from_raw(sys::rsynproxy_bench_take()) } {
        if v.push(p, GFP_KERNEL).is_err() {
            break;
        }
    }
    v
}

fn now() -> u64 {
    // SAFETY: no preconditions.
    unsafe { sys::ktime_get() as u64 }
}

fn msleep(ms: u32) {
    // SAFETY: process context (a control file write).
    unsafe { sys::msleep(ms) };
}

/// Whether a verdict means the callee took the packet.
fn stolen(v: u32) -> bool {
    v & 0xff == sys::NF_STOLEN
}

/// The timing of a run: the total, each sub-batch's ns per packet, and the run's window
/// number for the instruction count (see [`mark`]).
struct Clock {
    total: u64,
    per: KVec<u64>,
    window: u32,
}

impl Clock {
    fn new(n: usize) -> Result<Self> {
        Ok(Clock {
            total: 0,
            per: KVec::with_capacity(n.div_ceil(SUB), GFP_KERNEL)?,
            window: 0,
        })
    }

    /// Adds a sub-batch of `pkts` packets that took `ns`.
    fn add(&mut self, ns: u64, pkts: usize) -> Result {
        self.total += ns;
        self.per.push(ns / pkts.max(1) as u64, GFP_KERNEL)?;
        Ok(())
    }

    /// The median of the sub-batches' ns per packet: next to the mean, a figure a preempted
    /// vCPU (a host under load) cannot inflate.
    fn median(&mut self) -> u64 {
        self.per.sort_unstable();
        self.per.get(self.per.len() / 2).copied().unwrap_or(0)
    }
}

/// Calls `call` on each packet, timed in sub-batches with BHs off and under RCU, as the stack
/// runs targets and hooks. Returns the total ns and how many got verdict `want`; packets the
/// Times `call(j)` for `j` in `0..n`, in sub-batches of [`SUB`] with BHs disabled and
/// `rcu_read_lock` held, as the stack calls targets and hooks; the work the calls leave to
/// softirqs runs between sub-batches, outside the timing.
fn batches(n: usize, mut call: impl FnMut(usize)) -> Result<Clock> {
    let mut clock = Clock::new(n)?;
    let mut i = 0;
    while i < n {
        let end = (i + SUB).min(n);
        // SAFETY: process context, paired with leave below.
        unsafe { sys::rsynproxy_bench_enter() };
        let t0 = now();
        mark(Mark::Start);
        for j in i..end {
            call(j);
        }
        mark(Mark::Stop);
        let t1 = now();
        // SAFETY: paired with enter above.
        unsafe { sys::rsynproxy_bench_leave() };
        clock.add(t1.saturating_sub(t0), end - i)?;
        i = end;
    }
    mark(Mark::Report);
    clock.window = WINDOWS.fetch_add(1, Ordering::Relaxed);
    Ok(clock)
}

/// The markers of the instruction count (`make bench` part `insns`): instructions that do
/// nothing (a 16-bit register exchanged with itself, which no compiler emits), recognised by
/// the QEMU plugin `tests/bench/insns.c`. It counts the guest instructions a vCPU executes
/// between `Start` and `Stop` (the calls of a sub-batch, without the clock reads) and at each
/// `Report` writes the sum since the last one: one window per timed run, numbered from 0 in
/// the order they run ([`WINDOWS`]). Without the plugin they cost three instructions per
/// sub-batch.
#[derive(Clone, Copy)]
enum Mark {
    Start,
    Stop,
    Report,
}

/// Windows reported so far, since the module was loaded (the plugin counts from boot: the
/// bench is the only code with markers, and its module is loaded once per boot).
static WINDOWS: AtomicU32 = AtomicU32::new(0);

#[inline(always)]
fn mark(m: Mark) {
    // SAFETY: each is `xchg` of a register with itself: no register, flag or memory changes.
    unsafe {
        match m {
            Mark::Start => core::arch::asm!(
                ".byte 0x66, 0x87, 0xdb",
                options(nomem, nostack, preserves_flags)
            ),
            Mark::Stop => core::arch::asm!(
                ".byte 0x66, 0x87, 0xc9",
                options(nomem, nostack, preserves_flags)
            ),
            Mark::Report => core::arch::asm!(
                ".byte 0x66, 0x87, 0xd2",
                options(nomem, nostack, preserves_flags)
            ),
        }
    }
}

/// callee did not take are freed after the timing.
fn timed(
    pkts: KVec<Option<Pkt>>,
    want: u32,
    mut call: impl FnMut(*mut sys::sk_buff) -> u32,
) -> Result<(Clock, usize)> {
    let n = pkts.len();
    let mut verdicts = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        verdicts.push(0u32, GFP_KERNEL)?;
    }
    let clock = batches(n, |j| {
        if let Some(p) = &pkts[j] {
            verdicts[j] = call(p.as_ptr());
        }
    })?;
    let mut ok = 0;
    for (p, v) in pkts.into_iter().zip(verdicts.iter()) {
        if *v == want {
            ok += 1;
        }
        if let Some(p) = p {
            if stolen(*v) {
                // The callee consumed it.
                p.into_raw();
            }
        }
    }
    Ok((clock, ok))
}

/// Which proxy a run times.
#[derive(Clone, Copy, PartialEq)]
enum Which {
    R,
    C,
    Floor,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::R => "rsynproxy",
            Which::C => "synproxy",
            Which::Floor => "floor",
        }
    }
}

type HookFn =
    unsafe extern "C" fn(*mut c_void, *mut sys::sk_buff, *const sys::nf_hook_state) -> c_uint;

/// A target (with the module reference `xt_request_find_target` took) and a hook function
/// (with the reference `__symbol_get` took, for C's).
struct Proxy {
    target: NonNull<sys::xt_target>,
    hook: HookFn,
    symbol: Option<&'static core::ffi::CStr>,
}

impl Proxy {
    fn get(which: Which, v6: bool) -> Result<Proxy> {
        let (af, name): (u32, &core::ffi::CStr) = match (which, v6) {
            (Which::R, false) => (sys::NFPROTO_IPV4, c"RSYNPROXY"),
            (Which::R, true) => (sys::NFPROTO_IPV6, c"RSYNPROXY"),
            (_, false) => (sys::NFPROTO_IPV4, c"SYNPROXY"),
            (_, true) => (sys::NFPROTO_IPV6, c"SYNPROXY"),
        };
        // SAFETY: process context (it may load the module); the name is a C string.
        let t = unsafe { sys::xt_request_find_target(af as u8, name.as_ptr().cast(), 0) };
        if (t as usize) >= usize::MAX - 4095 || t.is_null() {
            return Err(ENOENT);
        }
        let target = NonNull::new(t).ok_or(ENOENT)?;
        let (hook, symbol): (HookFn, _) = if which == Which::R {
            (crate::target::nf_hook, None)
        } else {
            let sym = if v6 {
                c"ipv6_synproxy_hook"
            } else {
                c"ipv4_synproxy_hook"
            };
            // SAFETY: a C string; a non-null result is the exported function, pinned by the
            // reference __symbol_get took until __symbol_put in drop.
            let f = unsafe { sys::__symbol_get(sym.as_ptr().cast()) };
            if f.is_null() {
                // SAFETY: the reference xt_request_find_target took.
                unsafe { sys::module_put((*t).me) };
                return Err(ENOENT);
            }
            // SAFETY: the symbol is `unsigned int ipv4_synproxy_hook(void *, struct sk_buff *,
            // const struct nf_hook_state *)` (nf_synproxy.h), whose ABI is HookFn's.
            (
                unsafe { core::mem::transmute::<*mut c_void, HookFn>(f) },
                Some(sym),
            )
        };
        Ok(Proxy {
            target,
            hook,
            symbol,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(sym) = self.symbol {
            // SAFETY: the reference __symbol_get took in `get`.
            unsafe { sys::__symbol_put(sym.as_ptr().cast()) };
        }
        // SAFETY: the reference xt_request_find_target took in `get`.
        unsafe { sys::module_put(self.target.as_ref().me) };
    }
}

/// The rule options of the recipe the guest script installs: `--sack-perm --timestamp
/// --wscale 7 --mss 1460` (1440 for IPv6).
fn recipe_info(v6: bool) -> sys::nf_synproxy_info {
    sys::nf_synproxy_info {
        options: (sys::NF_SYNPROXY_OPT_MSS
            | sys::NF_SYNPROXY_OPT_WSCALE
            | sys::NF_SYNPROXY_OPT_SACK_PERM
            | sys::NF_SYNPROXY_OPT_TIMESTAMP) as u8,
        wscale: 7,
        mss: mss(v6),
    }
}

fn hook_state(net: &Net, v6: bool, hook: u32) -> sys::nf_hook_state {
    // SAFETY: all-zero is a valid nf_hook_state (no devices, socket or okfn: neither target
    // nor hook reads them).
    let mut s: sys::nf_hook_state = unsafe { core::mem::zeroed() };
    s.hook = hook as u8;
    let pf = if v6 {
        sys::NFPROTO_IPV6
    } else {
        sys::NFPROTO_IPV4
    };
    s.pf = pf as u8;
    s.net = net.as_ptr();
    s
}

/// N copies of `tmpl` with checksums verified, after `edit(i, bytes)` on each.
fn copies(
    tmpl: &Pkt,
    thoff: usize,
    n: usize,
    mut edit: impl FnMut(usize, &mut [u8]),
) -> Result<KVec<Option<Pkt>>> {
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    for i in 0..n {
        let mut c = tmpl.copy().ok_or(ENOMEM)?;
        edit(i, c.bytes_mut().ok_or(EINVAL)?);
        c.csum_rx(thoff);
        v.push(Some(c), GFP_KERNEL)?;
    }
    Ok(v)
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The offset of the timestamp option's TSval in a TCP header at `thoff`.
fn ts_at(b: &[u8], thoff: usize) -> Option<usize> {
    let end = thoff + usize::from(*b.get(thoff + 12)? >> 4) * 4;
    let mut i = thoff + HDR_LEN;
    while i < end.min(b.len()) {
        match b[i] {
            0 => return None,
            1 => i += 1,
            8 => return (i + 10 <= end).then_some(i + 2),
            _ => i += usize::from(*b.get(i + 1)?).max(2),
        }
    }
    None
}

/// One run: every path of `which` for one family. Writes result lines to `ctl`.
#[allow(clippy::too_many_arguments)]
fn run_family(
    net: &Net,
    tmpl: &Templates,
    runs: u32,
    out: &mut Out,
    which: Which,
    v6: bool,
    n: usize,
    step: &mut &'static str,
) -> Result {
    let fam = if v6 { 6 } else { 4 };
    let f = usize::from(v6);
    let syn = tmpl[f][0].as_ref().ok_or(ENOENT)?;
    let ack = tmpl[f][1].as_ref().ok_or(ENOENT)?;
    let thoff = peek_raw(syn.as_ptr()).ok_or(EINVAL)?.thoff;
    let mut lines = KVec::<(&str, Clock, usize)>::new();

    *step = "setup";
    if which == Which::Floor {
        *step = "floor";
        let clk = floor(net, syn, v6, n)?;
        lines.push(("syn", clk, n), GFP_KERNEL)?;
    } else {
        let proxy = Proxy::get(which, v6)?;
        let info = recipe_info(v6);
        let fwd = hook_state(net, v6, sys::nf_inet_hooks_NF_INET_FORWARD);
        // SAFETY: all-zero is a valid parameter block; the fields targets read are set.
        let mut par: sys::xt_action_param = unsafe { core::mem::zeroed() };
        par.__bindgen_anon_1.target = proxy.target.as_ptr();
        par.__bindgen_anon_2.targinfo = core::ptr::addr_of!(info).cast();
        par.state = &fwd;
        par.thoff = thoff as u32;
        // SAFETY: a registered target, pinned by the module reference `proxy` holds.
        let tg = unsafe { proxy.target.as_ref().target }.ok_or(EINVAL)?;
        // SAFETY: for each call below: the packet is ours and handed to the target as the
        // stack would (linear, network header at data, route and conntrack state of a
        // forwarded client packet), with `par` complete for this target and family, in
        // softirq-like context (timed); the target owns the packet if it returns NF_STOLEN.
        let target = |skb| unsafe { tg(skb, &par) };

        // 1. syn
        *step = "syn";
        let pkts = copies(syn, thoff, n, |_, _| {})?;
        let (clk, ok) = timed(pkts, sys::NF_STOLEN, target)?;
        lines.push(("syn", clk, ok), GFP_KERNEL)?;

        // 2. ack: a new connection each, the SYN-ACKs of the backend captured meanwhile.
        *step = "ack";
        let pkts = client_acks(ack, thoff, n, runs)?;
        drain();
        MODE.store(SYNACK, Ordering::Relaxed);
        let (clk, ok) = timed(pkts, sys::NF_STOLEN, target)?;
        lines.push(("ack", clk, ok), GFP_KERNEL)?;
        // The backend answers from softirq: wait for a SYN-ACK of every entry (the early ones
        // may come twice: the backend retransmits after a second).
        let t0 = now();
        let mut got = KVec::new();
        loop {
            got = one_per_entry(got)?;
            if got.len() >= ok || now() - t0 > 10_000_000_000 {
                break;
            }
            msleep(5);
        }
        MODE.store(HOLD, Ordering::Relaxed);
        let got = one_per_entry(got)?;

        // 3. synack
        *step = "synack";
        let mut pkts = KVec::with_capacity(got.len(), GFP_KERNEL)?;
        for p in got {
            if p.ct_state() == Some(sys::tcp_conntrack_TCP_CONNTRACK_SYN_RECV) {
                pkts.push(Some(p), GFP_KERNEL)?;
            }
        }
        let captured = pkts.len();
        // The established packet: the first SYN-ACK as the backend's next plain ACK.
        let est = match pkts.first() {
            Some(Some(p)) => {
                let mut e = p.copy().ok_or(ENOMEM)?;
                let len = to_established(e.bytes_mut().ok_or(EINVAL)?, v6, thoff).ok_or(EINVAL)?;
                e.trim(len);
                e.csum_rx(thoff);
                Some(e)
            }
            _ => None,
        };
        let post = hook_state(net, v6, sys::nf_inet_hooks_NF_INET_POST_ROUTING);
        let hookfn = proxy.hook;
        // SAFETY: for each call below: the packet is ours, as the stack hands it to a hook
        // at POST_ROUTING (a forwarded backend packet with its conntrack entry), in softirq-like
        // context; the hook owns it if it returns NF_STOLEN.
        let hook = |skb| unsafe { hookfn(core::ptr::null_mut(), skb, &post) };
        let (clk, ok) = timed(pkts, sys::NF_STOLEN, hook)?;
        MODE.store(OFF, Ordering::Relaxed);
        drain();
        lines.push(("synack", clk, ok), GFP_KERNEL)?;
        if captured < n {
            writeln!(
                out,
                "# {} {}: {} backend SYN-ACKs captured of {}",
                which.name(),
                fam,
                captured,
                n
            )
            .ok();
        }

        // 4. established
        *step = "established";
        if let Some(e) = est {
            let state = e.ct_state();
            if state != Some(sys::tcp_conntrack_TCP_CONNTRACK_ESTABLISHED) {
                writeln!(
                    out,
                    "# {} {}: established entry in state {:?}",
                    which.name(),
                    fam,
                    state
                )
                .ok();
            }
            // Check (untimed) that the hook translates this packet's TSval, as it must with
            // a timestamp offset: otherwise the row would time a shortcut.
            let mut probe = KVec::new();
            probe.push(Some(e.copy().ok_or(ENOMEM)?), GFP_KERNEL)?;
            let before = e
                .bytes()
                .and_then(|b| ts_at(b, thoff).map(|at| get32(b, at)));
            let mut after = None;
            timed(probe, sys::NF_ACCEPT, |skb| {
                // SAFETY: as for `hook`; the packet is only read after the call.
                let v = unsafe { hookfn(core::ptr::null_mut(), skb, &post) };
                let mut b = [0u8; 4];
                if let Some(at) = e.bytes().and_then(|x| ts_at(x, thoff)) {
                    // SAFETY: the packet is still ours (a hook that accepts does not free it).
                    if unsafe { sys::skb_copy_bits(skb, at as i32, b.as_mut_ptr().cast(), 4) } == 0
                    {
                        after = Some(u32::from_be_bytes(b));
                    }
                }
                v
            })?;
            if before.is_none() || before == after {
                writeln!(
                    out,
                    "# {} {}: established TSval not translated",
                    which.name(),
                    fam
                )
                .ok();
            }
            let pkts = copies(&e, thoff, n, |_, _| {})?;
            let (clk, ok) = timed(pkts, sys::NF_ACCEPT, hook)?;
            lines.push(("established", clk, ok), GFP_KERNEL)?;
            if which == Which::R {
                *step = "parts";
                parts(out, net, &e, v6, thoff, n)?;
            }
        }
    }
    for (path, mut clock, ok) in lines {
        let mean = if ok > 0 { clock.total / n as u64 } else { 0 };
        let med = clock.median();
        writeln!(
            out,
            "# window {} {} {} {} {}",
            clock.window,
            which.name(),
            path,
            fam,
            n
        )
        .ok();
        writeln!(
            out,
            "{} {} {} {} {} {} {}",
            which.name(),
            path,
            fam,
            mean,
            ok,
            n,
            med
        )
        .ok();
    }
    Ok(())
}

/// Rewrites a backend SYN-ACK (IP header, TCP header at `thoff`) into the backend's next
/// segment of an established connection: ACK only, seq one on, options NOP NOP TS (as Linux
/// sends them), no payload. Returns the new length, the IP header's length field set.
fn to_established(b: &mut [u8], v6: bool, thoff: usize) -> Option<usize> {
    let ts = ts_at(b, thoff)?;
    let (tsval, tsecr) = (get32(b, ts), get32(b, ts + 4));
    let seq = get32(b, thoff + 4);
    put32(b, thoff + 4, seq.wrapping_add(1));
    b[thoff + 12] = (8 << 4) | (b[thoff + 12] & 0xf);
    b[thoff + 13] = ACK;
    let o = thoff + HDR_LEN;
    b.get_mut(o..o + 4)?.copy_from_slice(&[1, 1, 8, 10]);
    put32(b, o + 4, tsval);
    put32(b, o + 8, tsecr);
    let len = o + 12;
    if v6 {
        b[4..6].copy_from_slice(&((len - IPV6_LEN) as u16).to_be_bytes());
    } else {
        b[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        b[10..12].copy_from_slice(&[0, 0]);
        let mut sum: u32 = b[..thoff]
            .chunks_exact(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        b[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    Some(len)
}

/// `f` run `n` times with BHs off and under RCU: ns per run.
fn time_n(n: usize, mut f: impl FnMut()) -> u64 {
    // SAFETY: process context, paired with leave below.
    unsafe { sys::rsynproxy_bench_enter() };
    let t0 = now();
    for _ in 0..n {
        f();
    }
    let t1 = now();
    // SAFETY: paired with enter above.
    unsafe { sys::rsynproxy_bench_leave() };
    t1.saturating_sub(t0) / n.max(1) as u64
}

/// Where RSYNPROXY's hook spends an established packet's time: the steps of `engine::hook`
/// one at a time, `n` times each on one private copy of `est` (a `# parts` line).
fn parts(out: &mut Out, net: &Net, est: &Pkt, v6: bool, thoff: usize, n: usize) -> Result {
    use crate::engine::{adjust_timestamps, read_control, Tcp};
    use crate::family::Ip;
    use crate::glue::conntrack::Conn;
    use core::hint::black_box;
    let p = est.copy().ok_or(ENOMEM)?;
    let mut ns = [0u64; 4];
    // SAFETY: `p` is ours, linear, `data` at its network header, standing in for a hook's
    // packet; the closure answers Accept, so `handle` frees nothing and `p` stays ours.
    unsafe {
        crate::glue::skb::handle(p.as_ptr(), |skb| {
            ns[0] = time_n(n, || {
                black_box(Conn::hooked(skb, v6).is_some());
            });
            ns[1] = time_n(n, || {
                black_box(read_control(skb, thoff));
            });
            // What the handshake's packets read besides (not an established packet's cost).
            ns[2] = time_n(n, || {
                black_box((Ip::read(skb, v6), Tcp::read(skb, thoff)));
            });
            if let Some(c) = read_control(skb, thoff) {
                ns[3] = time_n(n, || {
                    black_box(adjust_timestamps(skb, thoff, c, 1, true));
                });
            }
            crate::glue::skb::Verdict::Accept
        })
    };
    // What every packet RSYNPROXY sends costs before routing: the reply of a SYN-ACK's
    // size built in place (allocation, IP and TCP headers, pseudo-header checksum), freed.
    let mut reply = 0;
    // SAFETY: as above; read only.
    unsafe {
        crate::glue::skb::handle(est.as_ptr(), |skb| {
            if let Some(ip) = Ip::read(skb, v6) {
                let h = crate::proto::tcp::Header::default();
                let o = crate::proto::tcp::Options {
                    options: crate::proto::info::OPT_MSS
                        | crate::proto::info::OPT_TIMESTAMP
                        | crate::proto::info::OPT_SACK_PERM
                        | crate::proto::info::OPT_WSCALE,
                    ..Default::default()
                };
                reply = time_n(n, || {
                    black_box(ip.reply(net, true, &h, &o));
                });
            }
            crate::glue::skb::Verdict::Accept
        })
    };
    let fam = if v6 { 6 } else { 4 };
    writeln!(
        out,
        "# parts rsynproxy IPv{fam} established, ns/packet: entry+extension+loopback+tcp-offset \
         {}, tcp-header {}, ts-adjust {}; handshake packets only: ip+tcp-read {}; \
         sending: reply built (alloc, headers, free) {reply}",
        ns[0], ns[1], ns[3], ns[2]
    )
    .ok();
    Ok(())
}

/// N client ACKs from `tmpl`, each of a new connection (source port, ISN) and carrying the
/// cookie our SYN-ACK would have sent (computed here with the kernel's cookie functions).
fn client_acks(tmpl: &Pkt, thoff: usize, n: usize, run: u32) -> Result<KVec<Option<Pkt>>> {
    let b = tmpl.bytes().ok_or(EINVAL)?;
    let v6 = b[0] >> 4 == 6;
    let ts = ts_at(b, thoff);
    // SAFETY: no preconditions.
    let ms = (unsafe { sys::ktime_get() } / 1_000_000) as u32;
    // What our cookie SYN-ACK's TSval encodes: wscale 7, SACK permitted.
    let tsecr = (ms & !0x3f) | 0x10 | 7;
    // Runs take consecutive port ranges: the backend still holds earlier runs' connections.
    let base = (run as usize).wrapping_mul(n) % 55000;
    copies(tmpl, thoff, n, |i, b| {
        let sport = 10000 + ((base + i) % 55000) as u16;
        let isn = 0x1000_0000u32
            .wrapping_add((i as u32).wrapping_mul(104_729))
            .wrapping_add(run);
        b[thoff..thoff + 2].copy_from_slice(&sport.to_be_bytes());
        let mut th = Aligned([0u8; HDR_LEN]);
        th.0.copy_from_slice(&b[thoff..thoff + HDR_LEN]);
        put32(&mut th.0, 4, isn);
        put32(&mut th.0, 8, 0);
        th.0[13] = SYN;
        let cookie = if v6 {
            let mut ip = Aligned([0u8; IPV6_LEN]);
            ip.0.copy_from_slice(&b[..IPV6_LEN]);
            syncookie::v6_init(&ip, &th, mss(true)).0
        } else {
            let mut ip = Aligned([0u8; IPV4_LEN]);
            ip.0.copy_from_slice(&b[..IPV4_LEN]);
            syncookie::v4_init(&ip, &th, mss(false)).0
        };
        put32(b, thoff + 4, isn.wrapping_add(1));
        put32(b, thoff + 8, cookie.wrapping_add(1));
        if let Some(at) = ts {
            put32(b, at, ms.wrapping_add(i as u32));
            put32(b, at + 4, tsecr);
        }
    })
}

/// The floor of the SYN path: per packet, allocate a reply of the SYN-ACK's size (the
/// template SYN carries the same options), write prepared headers and the sequence number,
/// checksum as C leaves it, mark untracked, route like the SYN and send.
fn floor(net: &Net, syn: &Pkt, v6: bool, n: usize) -> Result<Clock> {
    let b = syn.bytes().ok_or(EINVAL)?;
    let (iplen, s, d) = if v6 {
        (IPV6_LEN, 8, 24)
    } else {
        (IPV4_LEN, 12, 16)
    };
    let alen = d - s;
    let mut hdr = KVec::new();
    hdr.extend_from_slice(b, GFP_KERNEL)?;
    // Reverse addresses and ports; SYN-ACK, window 0, checksum left to csum_tx.
    hdr[s..s + alen].copy_from_slice(&b[d..d + alen]);
    hdr[d..d + alen].copy_from_slice(&b[s..s + alen]);
    let t = iplen;
    hdr[t..t + 2].copy_from_slice(&b[t + 2..t + 4]);
    hdr[t + 2..t + 4].copy_from_slice(&b[t..t + 2]);
    put32(&mut hdr, t + 8, get32(b, t + 4).wrapping_add(1));
    hdr[t + 13] = SYN | ACK;
    hdr[t + 14] = 0;
    hdr[t + 15] = 0;
    let len = hdr.len();
    batches(n, |j| {
        // SAFETY: a new skb holding `len` bytes at data, ours until rsynproxy_send*, which
        // takes it (and frees it on error); `syn` is live for its route.
        unsafe {
            let skb = sys::rsynproxy_alloc_reply(len as u32);
            if skb.is_null() {
                return;
            }
            let p = (*skb).data;
            core::ptr::copy_nonoverlapping(hdr.as_ptr(), p, len);
            core::ptr::copy_nonoverlapping((j as u32).to_be_bytes().as_ptr(), p.add(t + 4), 4);
            sys::rsynproxy_set_headers(skb, iplen as u32, false);
            sys::rsynproxy_bench_csum_tx(skb);
            sys::rsynproxy_ct_untracked(skb);
            if v6 {
                sys::rsynproxy_send6(net.as_ptr(), syn.as_ptr(), skb);
            } else {
                sys::rsynproxy_send4(net.as_ptr(), syn.as_ptr(), skb);
            }
        }
    })
}

/// Runs one command; its lines go to `ctl.out`.
fn command(ctl: &mut Ctl, cmd: &str) -> Result {
    ctl.out.len = 0;
    let mut w = cmd.split_ascii_whitespace();
    match w.next() {
        Some("arm") => ctl.arm(),
        Some("disarm") => {
            ctl.disarm();
            Ok(())
        }
        Some("status") => {
            ctl.collect();
            let have = |f: usize, k: usize| u8::from(ctl.tmpl[f][k].is_some());
            let (a, b, c, d) = (have(0, 0), have(0, 1), have(1, 0), have(1, 1));
            writeln!(ctl.out, "syn4 {a} ack4 {b} syn6 {c} ack6 {d}").ok();
            Ok(())
        }
        Some("run") => {
            ctl.collect();
            let which = match w.next() {
                Some("rsynproxy") => Which::R,
                Some("synproxy") => Which::C,
                Some("floor") => Which::Floor,
                _ => return Err(EINVAL),
            };
            let n: usize = w.next().and_then(|s| s.parse().ok()).ok_or(EINVAL)?;
            if n == 0 || n > 100_000 {
                return Err(EINVAL);
            }
            ctl.runs = ctl.runs.wrapping_add(1);
            let Ctl {
                net,
                tmpl,
                out,
                runs,
            } = ctl;
            if net.is_null() {
                return Err(ENODEV);
            }
            // SAFETY: a non-null `net` carries the reference `arm` took.
            let net = unsafe { Net::from_raw(*net) };
            for v6 in [false, true] {
                let mut step = "";
                if let Err(e) = run_family(net, tmpl, *runs, out, which, v6, n, &mut step) {
                    let fam = if v6 { 6 } else { 4 };
                    let errno = e.to_errno();
                    writeln!(
                        out,
                        "# {} IPv{fam}: failed in {step}: {errno}",
                        which.name()
                    )
                    .ok();
                    pr_warn!(
                        "bench: {} IPv{fam} failed in {step}: {errno}\n",
                        which.name()
                    );
                    return Err(e);
                }
            }
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// # Safety
///
/// Called by procfs for a write to our file, `buf` a user pointer of `count` bytes.
unsafe extern "C" fn ctl_write(
    _file: *mut sys::file,
    buf: *const c_char,
    count: usize,
    _ppos: *mut sys::loff_t,
) -> isize {
    let mut cmd = [0u8; 64];
    let n = count.min(cmd.len());
    let mut r = kernel::uaccess::UserSlice::new(buf as usize, n).reader();
    if let Err(e) = r.read_slice(&mut cmd[..n]) {
        return e.to_errno() as isize;
    }
    let Ok(text) = core::str::from_utf8(&cmd[..n]) else {
        return EINVAL.to_errno() as isize;
    };
    if BUSY
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return EBUSY.to_errno() as isize;
    }
    // SAFETY: we hold BUSY, which guards CTL.
    let ctl = unsafe { &mut *CTL.0.get() };
    let res = command(ctl, text);
    BUSY.store(false, Ordering::Release);
    match res {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by procfs for a read of our file, `buf` a user pointer of `count` bytes.
unsafe extern "C" fn ctl_read(
    _file: *mut sys::file,
    buf: *mut c_char,
    count: usize,
    ppos: *mut sys::loff_t,
) -> isize {
    if BUSY
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return EBUSY.to_errno() as isize;
    }
    // SAFETY: we hold BUSY, which guards CTL.
    let ctl = unsafe { &*CTL.0.get() };
    // SAFETY: procfs' buffer and position; the source is our buffer, `out_len` bytes of it.
    let r = unsafe {
        sys::simple_read_from_buffer(
            buf.cast(),
            count,
            ppos,
            ctl.out.buf.as_ptr().cast(),
            ctl.out.len,
        )
    };
    BUSY.store(false, Ordering::Release);
    r
}

static PROC_OPS: sys::proc_ops = {
    // SAFETY: all-zero is a valid proc_ops (no callbacks).
    let mut ops: sys::proc_ops = unsafe { core::mem::zeroed() };
    ops.proc_read = Some(ctl_read);
    ops.proc_write = Some(ctl_write);
    ops.proc_lseek = Some(sys::default_llseek);
    ops
};

/// The control file; removing it disarms.
pub(crate) struct Registration(NonNull<sys::proc_dir_entry>);

// SAFETY: the entry is only removed, once, from drop.
unsafe impl Send for Registration {}
// SAFETY: no `&self` method.
unsafe impl Sync for Registration {}

/// Creates `/proc/rsynproxy_bench`.
pub(crate) fn register() -> Result<Registration> {
    // SAFETY: no preconditions; before the file exists nothing else uses the queue.
    unsafe { sys::rsynproxy_bench_queue_init() };
    // SAFETY: a static name and ops that outlive the entry (removed in drop).
    let de = unsafe {
        sys::proc_create(
            c"rsynproxy_bench".as_ptr().cast(),
            0o600,
            core::ptr::null_mut(),
            &PROC_OPS,
        )
    };
    NonNull::new(de).map(Registration).ok_or(ENOMEM)
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: created in `register`; waits for running reads and writes.
        unsafe { sys::proc_remove(self.0.as_ptr()) };
        // SAFETY: no command can run any more, so nothing else reaches CTL.
        unsafe { (*CTL.0.get()).disarm() };
    }
}
