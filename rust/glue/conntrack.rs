// SPDX-License-Identifier: GPL-2.0

//! Connection tracking (`include/net/netfilter/nf_conntrack.h`).

use super::net::Net;
use crate::sys;
use kernel::error::{to_result, Result};

/// A reference on conntrack's per-namespace hooks for `family`, as every xtables extension
/// that needs conntrack takes one while its rule exists. Dropping it puts the reference.
pub(crate) struct NetnsRef<'a> {
    net: &'a Net,
    family: u8,
}

impl<'a> NetnsRef<'a> {
    /// Takes the reference (`nf_ct_netns_get`).
    pub(crate) fn get(net: &'a Net, family: u8) -> Result<Self> {
        // SAFETY: `net` is live (`Net` invariant); nf_ct_netns_get accepts any family.
        to_result(unsafe { sys::nf_ct_netns_get(net.as_ptr(), family) })?;
        Ok(Self { net, family })
    }

    /// Keeps the reference past this value's life: the rule now owns it and
    /// [`put_owned`] releases it when the rule is destroyed.
    pub(crate) fn keep(self) {
        core::mem::forget(self);
    }
}

impl Drop for NetnsRef<'_> {
    fn drop(&mut self) {
        put_owned(self.net, self.family);
    }
}

/// Releases a reference that a rule kept with [`NetnsRef::keep`].
pub(crate) fn put_owned(net: &Net, family: u8) {
    // SAFETY: `net` is live and the caller owns one reference for `family`.
    unsafe { sys::nf_ct_netns_put(net.as_ptr(), family) };
}
