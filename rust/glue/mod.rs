// SPDX-License-Identifier: GPL-2.0

//! Thin safe wrappers over the C objects the module uses. Every `unsafe` of the module that
//! touches a kernel object lives in here, next to the invariant that justifies it.

pub(crate) mod conntrack;
pub(crate) mod hooks;
pub(crate) mod net;
pub(crate) mod percpu;
pub(crate) mod pernet;
pub(crate) mod proc;
pub(crate) mod skb;
pub(crate) mod syncookie;
pub(crate) mod xt;

use core::cell::UnsafeCell;

/// Memory that is handed to C and mutated there (registration structs carry list heads).
///
/// # Invariants
///
/// Once the pointer from [`CShared::get`] has been given to C, Rust only reaches the
/// contents through that raw pointer, never through references, so C's writes (serialised by
/// its own locks) cannot alias a Rust borrow.
#[repr(transparent)]
pub(crate) struct CShared<T>(UnsafeCell<T>);

// SAFETY: Rust holds no references into the contents (type invariant); the C code that
// mutates them serialises access itself (pernet_ops_rwsem, the xt mutex).
unsafe impl<T> Sync for CShared<T> {}

impl<T> CShared<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// The address to give to C.
    pub(crate) const fn get(&self) -> *mut T {
        self.0.get()
    }
}
