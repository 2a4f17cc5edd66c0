// SPDX-License-Identifier: GPL-2.0

//! Per-CPU counters, `struct rsynproxy_stats __percpu *` (`rust/sys/rsynproxy_sys.h`).

use crate::proto::stats::{Stat, NCOUNTERS};
use crate::sys;
use core::ptr::NonNull;
use kernel::error::{code::ENOMEM, Result};

/// A per-CPU block of [`NCOUNTERS`] counters.
///
/// # Invariants
///
/// `0` came from `rsynproxy_stats_alloc()` (`alloc_percpu`) and is freed only by `drop`.
pub(crate) struct PerCpuStats(NonNull<sys::rsynproxy_stats>);

// SAFETY: the counters are only touched through this_cpu_inc (each CPU its own copy) and
// read through per_cpu_ptr; neither needs the owning thread.
unsafe impl Send for PerCpuStats {}
// SAFETY: as above; `&self` methods never hand out references to the per-CPU data.
unsafe impl Sync for PerCpuStats {}

impl PerCpuStats {
    /// Allocates zeroed counters for every possible CPU (may sleep).
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions; returns NULL on failure.
        let ptr = unsafe { sys::rsynproxy_stats_alloc() };
        NonNull::new(ptr).map(Self).ok_or(ENOMEM)
    }

    /// Counts one event on the current CPU (any context, no locking).
    pub(crate) fn inc(&self, stat: Stat) {
        self.inc_index(stat as usize);
    }

    /// Counts one event of counter `idx` on the current CPU; an index out of range counts
    /// nothing.
    pub(crate) fn inc_index(&self, idx: usize) {
        if idx >= NCOUNTERS {
            return;
        }
        // SAFETY: the pointer is a live per-CPU allocation (type invariant) and `idx` is below
        // NCOUNTERS, the length of `cnt` (RSYNPROXY_STAT_MAX: `read_cpu` returns
        // the bound array as `[u32; NCOUNTERS]`, so the two cannot differ).
        unsafe { sys::rsynproxy_stat_inc(self.0.as_ptr(), idx as u32) };
    }

    /// Reads one possible CPU's counters.
    pub(crate) fn read_cpu(&self, cpu: u32) -> [u32; NCOUNTERS] {
        if !cpu_possible(cpu) {
            return [0; NCOUNTERS];
        }
        // SAFETY: the allocation is live (type invariant) and `cpu` is a possible CPU, so
        // per_cpu_ptr() yields a valid pointer into it. A racing increment on another CPU is
        // a plain word write; the copy may miss it, as the C reader does.
        let cnt =
            unsafe { core::ptr::read_volatile(sys::rsynproxy_stats_cpu(self.0.as_ptr(), cpu)) };
        cnt.cnt
    }

    /// Sums the counters over all possible CPUs (tests).
    #[cfg(rsynproxy_kunit)]
    pub(crate) fn sum(&self) -> [u32; NCOUNTERS] {
        let mut total = [0u32; NCOUNTERS];
        for cpu in possible_cpus() {
            for (t, v) in total.iter_mut().zip(self.read_cpu(cpu)) {
                *t = t.wrapping_add(v);
            }
        }
        total
    }
}

impl Drop for PerCpuStats {
    fn drop(&mut self) {
        // SAFETY: allocated by alloc_percpu and not freed before (type invariant).
        unsafe { sys::free_percpu(self.0.as_ptr().cast()) };
    }
}

/// Whether `cpu` is a possible CPU.
pub(crate) fn cpu_possible(cpu: u32) -> bool {
    // SAFETY: reads the possible mask; any `cpu` value is accepted (out of range is false).
    cpu < nr_cpu_ids() && unsafe { sys::rsynproxy_cpu_possible(cpu) }
}

/// `nr_cpu_ids`.
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: reads a variable that is fixed after boot.
    unsafe { sys::rsynproxy_nr_cpu_ids() }
}

/// Iterates over the possible CPUs in ascending order.
pub(crate) fn possible_cpus() -> impl Iterator<Item = u32> {
    (0..nr_cpu_ids()).filter(|&cpu| cpu_possible(cpu))
}
