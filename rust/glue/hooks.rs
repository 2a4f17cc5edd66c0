// SPDX-License-Identifier: GPL-2.0

//! Netfilter hooks registered per namespace (`nf_register_net_hooks`,
//! `include/linux/netfilter.h`).

use super::{net::Net, CShared};
use crate::sys;
use kernel::error::{to_result, Result};

/// Registers `ops` in `net`.
pub(crate) fn register<const N: usize>(
    net: &Net,
    ops: &'static CShared<[sys::nf_hook_ops; N]>,
) -> Result {
    // SAFETY: `ops` is static, so it outlives the registration; `net` is live.
    to_result(unsafe { sys::nf_register_net_hooks(net.as_ptr(), ops.get().cast(), N as u32) })
}

/// Unregisters what [`register`] registered in `net` (waits for running hooks).
pub(crate) fn unregister<const N: usize>(net: &Net, ops: &'static CShared<[sys::nf_hook_ops; N]>) {
    // SAFETY: registered in `net` before (the caller's reference count says so).
    unsafe { sys::nf_unregister_net_hooks(net.as_ptr(), ops.get().cast(), N as u32) };
}

/// Holds the module's hook mutex: hook reference counts change only under it.
pub(crate) struct HooksLock(());

impl HooksLock {
    /// Takes the mutex (may sleep).
    pub(crate) fn lock() -> Self {
        // SAFETY: a static mutex; released in drop.
        unsafe { sys::rsynproxy_hooks_lock() };
        HooksLock(())
    }
}

impl Drop for HooksLock {
    fn drop(&mut self) {
        // SAFETY: taken in `lock`.
        unsafe { sys::rsynproxy_hooks_unlock() };
    }
}
