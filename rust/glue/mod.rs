// SPDX-License-Identifier: GPL-2.0

//! Thin safe wrappers over the C objects the module uses. Every `unsafe` of the module that
//! touches a kernel object lives in here, next to the invariant that justifies it.

pub(crate) mod conntrack;
pub(crate) mod hooks;
pub(crate) mod net;
pub(crate) mod pending;
pub(crate) mod percpu;
pub(crate) mod pernet;
pub(crate) mod proc;
pub(crate) mod skb;
pub(crate) mod syncookie;
pub(crate) mod xt;

use crate::sys;
use core::cell::UnsafeCell;

/// The C registration structs that may live in a [`CShared`]: plain data (callbacks,
/// numbers, pointers to other statics) plus the list heads their C owner links.
///
/// # Safety
///
/// Implement only for a type whose every mutation after registration is made by C code that
/// serialises it with its own lock, and whose contents are not otherwise tied to a thread.
pub(crate) unsafe trait CRegistration {}

// SAFETY: nf_register_net_hooks keeps pointers to the ops in the namespace's hook blob and
// only reads them (the hook core, nfnetlink_hook); nothing writes the static.
unsafe impl CRegistration for sys::nf_hook_ops {}
// SAFETY: register/unregister_pernet_subsys link `list` under pernet_ops_rwsem (write).
unsafe impl CRegistration for sys::pernet_operations {}
// SAFETY: xt_(un)register_target link `list` under the xt mutex of the family.
unsafe impl CRegistration for sys::xt_target {}
// SAFETY: an array of such structs, each handled as above.
unsafe impl<T: CRegistration, const N: usize> CRegistration for [T; N] {}

/// Memory that is handed to C and mutated there (registration structs carry list heads).
///
/// # Invariants
///
/// Once the pointer from [`CShared::get`] has been given to C, Rust only reaches the
/// contents through that raw pointer, never through references, so C's writes (serialised by
/// its own locks) cannot alias a Rust borrow.
#[repr(transparent)]
pub(crate) struct CShared<T: CRegistration>(UnsafeCell<T>);

// SAFETY: Rust holds no references into the contents (type invariant), and T is one of the
// registration structs whose C owner serialises every change (CRegistration).
unsafe impl<T: CRegistration> Sync for CShared<T> {}

impl<T: CRegistration> CShared<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// The address to give to C.
    pub(crate) const fn get(&self) -> *mut T {
        self.0.get()
    }
}
