// SPDX-License-Identifier: GPL-2.0

//! Per-namespace state: the counters, `/proc/net/stat/rsynproxy` and
//! `/proc/net/stat/rsynproxy_mismatch`.
//!
//! Mirrors `synproxy_net_ops` in nf_synproxy_core.c, under its own proc name and net id so
//! both can be loaded at once.

use crate::glue::conntrack::{Conn, Template};
use crate::glue::hooks::{self, HooksLock};
use crate::glue::{net::Net, percpu::PerCpuStats, pernet, proc, CShared};
use crate::proto::mismatch::{self, Kind};
use crate::proto::stats::{self, Stat};
use crate::sys;
use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

/// What each namespace holds while it lives or a rule holds it: the counters and the
/// template.
pub(crate) struct NetState {
    stats: PerCpuStats,
    tmpl: Template,
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

    /// Counts a backend option mismatch in this namespace.
    pub(crate) fn count_mismatch(&self, kind: Kind) {
        self.stats.inc_index(stats::mismatch_index(kind));
    }
}

/// The block pernet allocates for us in each namespace (`net_generic`).
///
/// # Lifetime
///
/// The block's memory lives from before `net_init` until `ops_free_list`, which runs after
/// every pernet exit of a dying namespace (net/core/net_namespace.c, `ops_undo_list`), or
/// after our own exit when the module unloads (`unregister_pernet_subsys`). `refs` and
/// `gone` are plain words valid all that time. `state` is written by `net_init` and dropped
/// once, by whichever comes last of `net_exit` and the last [`hooks_put`] after it: see
/// [`NetBlock::release_if_unused`].
///
/// # Why the state can outlive `net_exit`
///
/// `cleanup_net` runs, for all pernet operations: every `pre_exit`, `synchronize_rcu`,
/// every `exit` in reverse registration order, then every free. The iptables tables and
/// nf_tables register their pernet operations at boot, before this module, so their exits
/// run after ours, and that is where they destroy the rules they still hold — our
/// `tg_destroy` → [`hooks_put`] runs after our `net_exit`. The state must stay until then.
struct NetBlock {
    /// Rules using the target in this namespace, per family (IPv4, IPv6); the family's hooks
    /// are registered while its count is above 0. Changed only under [`HooksLock`].
    refs: [AtomicU32; 2],
    /// Set (under [`HooksLock`]) by `net_exit`: the namespace is being dismantled and takes
    /// no new rule.
    gone: AtomicBool,
    /// Initialised by `net_init`; see the lifetime above.
    state: UnsafeCell<MaybeUninit<NetState>>,
}

impl NetBlock {
    /// Drops the state if the namespace is gone and no rule holds it any more. Called under
    /// [`HooksLock`] by `net_exit` and by the last [`hooks_put`] of a family.
    ///
    /// # Safety
    ///
    /// The caller holds [`HooksLock`] (passed as proof) and the state was not dropped yet: the
    /// state is dropped only here, only once `gone` is set, and `gone` is set once, so of
    /// `net_exit` and the `hooks_put` calls after it, exactly one finds the block gone and
    /// unused — the last one.
    unsafe fn release_if_unused(&self, _lock: &HooksLock) {
        let unused = self.refs.iter().all(|r| r.load(Ordering::Relaxed) == 0);
        if self.gone.load(Ordering::Relaxed) && unused {
            // SAFETY: initialised by net_init and not dropped yet (caller). Nothing can reach
            // it any more: the proc files are gone (net_exit removed them before setting `gone`,
            // and remove_proc_entry waits for running reads); no rule holds it (every count is
            // 0, and a gone namespace takes no new rule), so no target can run with it; the
            // hooks are unregistered (the last hooks_put of each family unregistered them,
            // and nf_unregister_net_hooks waits for running hooks).
            unsafe { (*self.state.get()).assume_init_drop() };
        }
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

/// The block of `net`.
fn block(net: &Net) -> &NetBlock {
    // SAFETY: our subsystem is registered whenever this module's code runs for `net` (init
    // order in rsynproxy_main.rs), and net_init wrote the block before the namespace could
    // reach this module. Its memory lives until ops_free_list, after every exit that can
    // still call us (NetBlock). The fields shared between CPUs are atomics or in an
    // UnsafeCell, so a shared reference is sound.
    unsafe { &*pernet::generic::<NetBlock>(net, &NET_ID) }
}

/// A rule of `family` now uses the target in `net`: register the hooks with the first.
pub(crate) fn hooks_get(net: &Net, family: u8) -> Result {
    let f = family_index(family);
    let b = block(net);
    let _lock = HooksLock::lock();
    if b.gone.load(Ordering::Relaxed) {
        // A namespace in cleanup_net has no user that could add a rule; refuse anyway, since
        // the state may already be gone.
        return Err(ENODEV);
    }
    let refs = &b.refs[f];
    let n = refs.load(Ordering::Relaxed);
    if n == 0 {
        hooks::register(net, &HOOKS[f])?;
    }
    refs.store(n.checked_add(1).ok_or(ERANGE)?, Ordering::Relaxed);
    Ok(())
}

/// The reverse of [`hooks_get`]: unregister with the last rule of the family, and drop the
/// state with the last rule of a namespace whose exit already ran.
pub(crate) fn hooks_put(net: &Net, family: u8) {
    let f = family_index(family);
    let b = block(net);
    let lock = HooksLock::lock();
    let refs = &b.refs[f];
    let Some(n) = refs.load(Ordering::Relaxed).checked_sub(1) else {
        pr_err!("hooks_put without a reference (family {})\n", family);
        return;
    };
    refs.store(n, Ordering::Relaxed);
    if n == 0 {
        // Waits for hooks running on other CPUs.
        hooks::unregister(net, &HOOKS[f]);
        // SAFETY: we hold the lock; the state is still there: it is dropped only once the
        // namespace is gone and unused, and it was not unused before this put (count n + 1).
        unsafe { b.release_if_unused(&lock) };
    }
}

/// The rule references of `net` per family (tests).
#[cfg(rsynproxy_kunit)]
pub(crate) fn hook_refs(net: &Net) -> [u32; 2] {
    let b = block(net);
    let _lock = HooksLock::lock();
    [0, 1].map(|f| b.refs[f].load(Ordering::Relaxed))
}

const PROC_NAME: &core::ffi::CStr = c"rsynproxy";
/// The mismatch counters: a second file, so that the first keeps SYNPROXY's format.
const PROC_MISMATCH: &core::ffi::CStr = c"rsynproxy_mismatch";

static NET_ID: AtomicU32 = AtomicU32::new(0);

static OPS: CShared<sys::pernet_operations> = CShared::new({
    // SAFETY: all-zero is a valid pernet_operations (empty list head, no callbacks).
    let mut ops: sys::pernet_operations = unsafe { core::mem::zeroed() };
    ops.init = Some(net_init);
    ops.exit = Some(net_exit);
    ops.id = NET_ID.as_ptr();
    ops.size = core::mem::size_of::<NetBlock>();
    ops
});

/// Registers the subsystem; its state exists in every namespace while the value lives.
pub(crate) fn register() -> Result<pernet::Registration> {
    pernet::Registration::register(&OPS)
}

/// The state of `net`.
///
/// # Safety
///
/// The state is alive for the returned borrow: the caller runs in a rule of this target in
/// `net` (each rule holds a reference, see [`hooks_get`]), in one of our hooks (registered
/// only while a rule holds a reference), or in a read of a proc file (which exist from
/// `net_init` until `net_exit` removes them, before the state can be dropped).
pub(crate) unsafe fn state(net: &Net) -> &NetState {
    // SAFETY: initialised by net_init and alive for the borrow (caller's guarantee).
    unsafe { (*block(net).state.get()).assume_init_ref() }
}

/// # Safety
///
/// Called by the pernet core with a live namespace.
unsafe extern "C" fn net_init(net: *mut sys::net) -> c_int {
    // SAFETY: pernet init gets a live namespace.
    let net = unsafe { Net::from_raw(net) };
    let state = match (PerCpuStats::new(), Template::new(net)) {
        (Ok(stats), Ok(tmpl)) => NetState { stats, tmpl },
        (Err(e), _) | (_, Err(e)) => return e.to_errno(),
    };
    let slot = pernet::generic::<NetBlock>(net, &NET_ID);
    let blk = NetBlock {
        refs: [AtomicU32::new(0), AtomicU32::new(0)],
        gone: AtomicBool::new(false),
        state: UnsafeCell::new(MaybeUninit::new(state)),
    };
    // SAFETY: the block is ours, sized and aligned for NetBlock (ops.size), and holds no
    // value yet; nothing reads it before this init returns.
    unsafe { slot.write(blk) };
    let files = proc::create_stat(net, PROC_NAME, &SEQ_OPS).and_then(|()| {
        proc::create_stat(net, PROC_MISMATCH, &SEQ_OPS_MISMATCH)
            .inspect_err(|_| proc::remove_stat(net, PROC_NAME))
    });
    if let Err(e) = files {
        // SAFETY: written just above; nothing else can see it any more (no proc file:
        // remove_stat waited for readers of the first; no rule: the namespace is not live
        // yet, or the targets are not registered yet). The pernet core frees the block and
        // calls no exit for this namespace.
        unsafe { (*(*slot).state.get()).assume_init_drop() };
        return e.to_errno();
    }
    0
}

/// # Safety
///
/// Called by the pernet core with a namespace whose init succeeded, in `cleanup_net` or in
/// `unregister_pernet_subsys` (module unload).
unsafe extern "C" fn net_exit(net: *mut sys::net) {
    // SAFETY: pernet exit gets a namespace that lives until after every exit.
    let net = unsafe { Net::from_raw(net) };
    // Waits for running reads: nothing reads the state through the files after this.
    proc::remove_stat(net, PROC_NAME);
    proc::remove_stat(net, PROC_MISMATCH);
    let b = block(net);
    let lock = HooksLock::lock();
    b.gone.store(true, Ordering::Relaxed);
    // Module unload: every rule holds a module reference, so none is left and the state goes
    // now; pernet_ops_rwsem (held for writing by unregister_pernet_subsys, for reading by
    // cleanup_net) keeps this from overlapping a namespace's cleanup. cleanup_net: rules of
    // the iptables tables and nf_tables may remain, destroyed by their exits after this one;
    // then the last hooks_put drops the state.
    // SAFETY: we hold the lock; the state was not dropped: `gone` was not set before.
    unsafe { b.release_if_unused(&lock) };
}

// The proc files walk the possible CPUs: position 0 is the header, position n is CPU n-1.

static SEQ_OPS: sys::seq_operations = sys::seq_operations {
    start: Some(seq_start),
    stop: Some(seq_stop),
    next: Some(seq_next),
    show: Some(seq_show),
};

static SEQ_OPS_MISMATCH: sys::seq_operations = sys::seq_operations {
    start: Some(seq_start),
    stop: Some(seq_stop),
    next: Some(seq_next),
    show: Some(seq_show_mismatch),
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
        // SAFETY: a read of the proc file, which exists only while the state does.
        let (counts, _) = stats::split(&unsafe { state(seq.net()) }.stats.read_cpu(cpu));
        seq.write(&stats::format_line(&counts));
    }
    0
}

/// # Safety
///
/// Called by seq_file for the mismatch proc file.
unsafe extern "C" fn seq_show_mismatch(seq: *mut sys::seq_file, v: *mut c_void) -> c_int {
    // SAFETY: called by seq_file for our proc file, with its seq_file.
    let seq = unsafe { proc::SeqFile::from_raw(seq) };
    if v == proc::start_token() {
        seq.write(mismatch::HEADER);
    } else {
        let cpu = (v as usize - 2) as u32;
        // SAFETY: a read of the proc file, which exists (like the first) only while the
        // state does: net_exit removes both before the state can go.
        let (_, counts) = stats::split(&unsafe { state(seq.net()) }.stats.read_cpu(cpu));
        seq.write(&stats::format_line(&counts));
    }
    0
}
