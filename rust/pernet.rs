// SPDX-License-Identifier: GPL-2.0

//! Per-namespace state: the counters and `/proc/net/stat/rsynproxy`.
//!
//! Mirrors `synproxy_net_ops` in nf_synproxy_core.c, under its own proc name and net id so
//! both can be loaded at once.

use crate::glue::conntrack::{Conn, Template};
use crate::glue::hooks::{self, HooksLock};
use crate::glue::{net::Net, percpu::PerCpuStats, pernet, proc, CShared};
use crate::proto::stats::{self, Stat};
use crate::sys;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::c_str;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

/// What each namespace holds, in the block pernet allocates for us.
pub(crate) struct NetState {
    stats: PerCpuStats,
    tmpl: Template,
    /// Rules using the target, per family (IPv4, IPv6): the hooks are registered while > 0.
    /// Changed only under [`HooksLock`].
    hook_refs: [AtomicU32; 2],
}

impl NetState {
    /// The template backend SYNs carry.
    pub(crate) fn template(&self) -> &Conn {
        self.tmpl.conn()
    }

    /// Counts an event in this namespace.
    pub(crate) fn count(&self, stat: Stat) {
        self.stats.inc(stat);
    }

    /// The counters summed over all CPUs.
    pub(crate) fn totals(&self) -> [u32; stats::NSTATS] {
        self.stats.sum()
    }
}

/// The hooks of one family (LOCAL_IN and POST_ROUTING, just before conntrack confirms).
const fn hook_ops(pf: u32) -> [sys::nf_hook_ops; 2] {
    // SAFETY: all-zero is a valid nf_hook_ops.
    let mut ops: [sys::nf_hook_ops; 2] = unsafe { core::mem::zeroed() };
    let hooknums = [
        sys::nf_inet_hooks_NF_INET_LOCAL_IN,
        sys::nf_inet_hooks_NF_INET_POST_ROUTING,
    ];
    let mut i = 0;
    while i < 2 {
        ops[i].hook = Some(crate::target::nf_hook);
        ops[i].pf = pf as u8;
        ops[i].hooknum = hooknums[i];
        ops[i].priority = sys::RSYNPROXY_HOOK_PRIORITY;
        i += 1;
    }
    ops
}

static HOOKS: [CShared<[sys::nf_hook_ops; 2]>; 2] = [
    CShared::new(hook_ops(sys::NFPROTO_IPV4)),
    CShared::new(hook_ops(sys::NFPROTO_IPV6)),
];

fn family_index(family: u8) -> usize {
    usize::from(u32::from(family) == sys::NFPROTO_IPV6)
}

/// A rule of `family` now uses the target in `net`: register the hooks with the first.
pub(crate) fn hooks_get(net: &Net, family: u8) -> Result {
    let f = family_index(family);
    let refs = &state(net).hook_refs[f];
    let _lock = HooksLock::lock();
    if refs.load(Ordering::Relaxed) == 0 {
        hooks::register(net, &HOOKS[f])?;
    }
    refs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The reverse of [`hooks_get`]: unregister with the last rule.
pub(crate) fn hooks_put(net: &Net, family: u8) {
    let f = family_index(family);
    let refs = &state(net).hook_refs[f];
    let _lock = HooksLock::lock();
    if refs.fetch_sub(1, Ordering::Relaxed) == 1 {
        hooks::unregister(net, &HOOKS[f]);
    }
}

const PROC_NAME: &CStr = c_str!("rsynproxy");

static NET_ID: AtomicU32 = AtomicU32::new(0);

static OPS: CShared<sys::pernet_operations> = CShared::new({
    // SAFETY: all-zero is a valid pernet_operations (empty list head, no callbacks).
    let mut ops: sys::pernet_operations = unsafe { core::mem::zeroed() };
    ops.init = Some(net_init);
    ops.exit = Some(net_exit);
    ops.id = NET_ID.as_ptr();
    ops.size = core::mem::size_of::<NetState>();
    ops
});

/// Registers the subsystem; its state exists in every namespace while the value lives.
pub(crate) fn register() -> Result<pernet::Registration> {
    pernet::Registration::register(&OPS)
}

/// The state of `net`.
pub(crate) fn state(net: &Net) -> &NetState {
    // SAFETY: net_init wrote a NetState into this block before the namespace (or, for
    // existing ones, this module) could reach it, and net_exit drops it only when nothing can.
    unsafe { &*pernet::generic::<NetState>(net, &NET_ID) }
}

/// # Safety
///
/// Called by the pernet core with a live namespace.
unsafe extern "C" fn net_init(net: *mut sys::net) -> c_int {
    // SAFETY: pernet init gets a live namespace.
    let net = unsafe { Net::from_raw(net) };
    let state = match (PerCpuStats::new(), Template::new(net)) {
        (Ok(stats), Ok(tmpl)) => NetState {
            stats,
            tmpl,
            hook_refs: [AtomicU32::new(0), AtomicU32::new(0)],
        },
        (Err(e), _) | (_, Err(e)) => return e.to_errno(),
    };
    let slot = pernet::generic::<NetState>(net, &NET_ID);
    // SAFETY: the block is ours, sized and aligned for NetState, and holds no value yet.
    unsafe { slot.write(state) };
    if let Err(e) = proc::create_stat(net, PROC_NAME, &SEQ_OPS) {
        // SAFETY: written just above; nothing else can have seen it (no proc file).
        unsafe { slot.drop_in_place() };
        return e.to_errno();
    }
    0
}

/// # Safety
///
/// Called by the pernet core with a live namespace whose init succeeded.
unsafe extern "C" fn net_exit(net: *mut sys::net) {
    // SAFETY: pernet exit gets a live namespace.
    let net = unsafe { Net::from_raw(net) };
    proc::remove_stat(net, PROC_NAME);
    // SAFETY: net_init succeeded for this namespace (exit runs only then) and the proc file,
    // the last reader, is gone; no rule can exist in a dying namespace.
    unsafe { pernet::generic::<NetState>(net, &NET_ID).drop_in_place() };
}

// The proc file walks the possible CPUs: position 0 is the header, position n is CPU n-1.

static SEQ_OPS: sys::seq_operations = sys::seq_operations {
    start: Some(seq_start),
    stop: Some(seq_stop),
    next: Some(seq_next),
    show: Some(seq_show),
};

/// The iterator value for CPU `cpu` (never null, never SEQ_START_TOKEN = 1).
fn cpu_cookie(cpu: u32) -> *mut c_void {
    core::ptr::null_mut::<u8>()
        .wrapping_add(cpu as usize + 2)
        .cast()
}

fn next_cpu(pos: &mut i64) -> *mut c_void {
    let first = u32::try_from(*pos - 1).unwrap_or(u32::MAX);
    match crate::glue::percpu::possible_cpus().find(|&cpu| cpu >= first) {
        Some(cpu) => {
            *pos = i64::from(cpu) + 1;
            cpu_cookie(cpu)
        }
        None => core::ptr::null_mut(),
    }
}

/// # Safety
///
/// Called by seq_file for our proc file.
unsafe extern "C" fn seq_start(_seq: *mut sys::seq_file, pos: *mut i64) -> *mut c_void {
    // SAFETY: seq_file passes a valid position.
    let pos = unsafe { &mut *pos };
    if *pos == 0 {
        return proc::start_token();
    }
    next_cpu(pos)
}

/// # Safety
///
/// Called by seq_file for our proc file.
unsafe extern "C" fn seq_next(
    _seq: *mut sys::seq_file,
    _v: *mut c_void,
    pos: *mut i64,
) -> *mut c_void {
    // SAFETY: seq_file passes a valid position.
    let pos = unsafe { &mut *pos };
    *pos += 1;
    next_cpu(pos)
}

/// # Safety
///
/// Called by seq_file for our proc file.
unsafe extern "C" fn seq_stop(_seq: *mut sys::seq_file, _v: *mut c_void) {}

/// # Safety
///
/// Called by seq_file for our proc file.
unsafe extern "C" fn seq_show(seq: *mut sys::seq_file, v: *mut c_void) -> c_int {
    // SAFETY: called by seq_file for our proc file, with its seq_file.
    let seq = unsafe { proc::SeqFile::from_raw(seq) };
    if v == proc::start_token() {
        seq.write(stats::HEADER);
    } else {
        let cpu = (v as usize - 2) as u32;
        let counts = state(seq.net()).stats.read_cpu(cpu);
        seq.write(&stats::format_line(&counts));
    }
    0
}
