// SPDX-License-Identifier: GPL-2.0

//! Network namespaces, `struct net` (`include/net/net_namespace.h`).

use crate::sys;
use kernel::types::Opaque;

/// A network namespace.
///
/// # Invariants
///
/// A `&Net` is only made by [`Net::from_raw`], whose caller guarantees that the namespace
/// outlives the reference.
#[repr(transparent)]
pub(crate) struct Net(Opaque<sys::net>);

impl Net {
    /// Borrows the namespace behind `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` points to a live `struct net` that stays alive for `'a` (the kernel guarantees
    /// this for the `net` of pernet init/exit, xtables parameters and hook state).
    pub(crate) unsafe fn from_raw<'a>(ptr: *const sys::net) -> &'a Net {
        // SAFETY: `Net` is a transparent wrapper of `sys::net`; validity is the caller's.
        unsafe { &*ptr.cast::<Net>() }
    }

    /// The initial namespace (tests).
    #[cfg(rsynproxy_kunit)]
    pub(crate) fn init() -> &'static Net {
        // SAFETY: init_net is a static that lives as long as the kernel.
        unsafe { Net::from_raw(core::ptr::addr_of!(sys::init_net)) }
    }

    /// The raw pointer, for C calls.
    pub(crate) fn as_ptr(&self) -> *mut sys::net {
        self.0.get()
    }

    /// `net->proc_net_stat`, the namespace's `/proc/net/stat` directory.
    pub(crate) fn proc_net_stat(&self) -> *mut sys::proc_dir_entry {
        // SAFETY: the namespace is live (type invariant); proc_net_stat is set before any
        // pernet subsystem init runs and stays until after every exit. Read in C: `net` is
        // opaque to Rust (rust/sys/bindgen_parameters).
        unsafe { sys::rsynproxy_net_proc_net_stat(self.as_ptr()) }
    }

    /// `net.ipv4.ip_default_ttl`, for the packets the proxy sends.
    pub(crate) fn ip4_ttl(&self) -> u8 {
        // SAFETY: the namespace is live (type invariant).
        unsafe { sys::rsynproxy_ip4_ttl(self.as_ptr()) }
    }

    /// `net.ipv6.conf.all.hop_limit`.
    pub(crate) fn ip6_hop_limit(&self) -> u8 {
        // SAFETY: the namespace is live (type invariant).
        unsafe { sys::rsynproxy_ip6_hop_limit(self.as_ptr()) }
    }
}
