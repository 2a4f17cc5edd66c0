// SPDX-License-Identifier: GPL-2.0

//! Per-namespace subsystems (`register_pernet_subsys`, `include/net/net_namespace.h`).

use super::{net::Net, CShared};
use crate::sys;
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::error::{to_result, Result};

/// A registered `struct pernet_operations`; unregistered (running every exit) on drop.
pub(crate) struct Registration(&'static CShared<sys::pernet_operations>);

impl Registration {
    /// Registers `ops`, running its init for every existing namespace.
    pub(crate) fn register(ops: &'static CShared<sys::pernet_operations>) -> Result<Self> {
        // SAFETY: `ops` is static, so it outlives the registration, and is only reached through
        // the raw pointer from here on (CShared invariant).
        to_result(unsafe { sys::register_pernet_subsys(ops.get()) })?;
        Ok(Self(ops))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered in `register` and not unregistered since.
        unsafe { sys::unregister_pernet_subsys(self.0.get()) };
    }
}

/// The per-namespace block of a subsystem registered with `.id = id.as_ptr()` and a `.size`
/// of at least `size_of::<T>()` (`net_generic()`).
///
/// The pointer is valid while `net` is alive and the subsystem registered.
pub(crate) fn generic<T>(net: &Net, id: &AtomicU32) -> *mut T {
    // SAFETY: `net` is live; `id` was filled in by register_pernet_subsys, so net->gen has a
    // slot for it.
    unsafe { sys::rsynproxy_net_generic(net.as_ptr(), id.load(Ordering::Relaxed)).cast() }
}
