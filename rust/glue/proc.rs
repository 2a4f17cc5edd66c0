// SPDX-License-Identifier: GPL-2.0

//! `/proc/net` sequence files (`include/linux/proc_fs.h`, `include/linux/seq_file.h`).

use super::net::Net;
use crate::sys;
use core::ffi::CStr;
use kernel::error::{code::ENOMEM, Result};

/// Creates `/proc/net/stat/<name>` in `net` with per-namespace sequence operations
/// (`proc_create_net`). Remove it with [`remove_stat`].
pub(crate) fn create_stat(
    net: &Net,
    name: &'static CStr,
    ops: &'static sys::seq_operations,
) -> Result {
    // SAFETY: `name` and `ops` are static; the parent directory is the live namespace's
    // proc_net_stat; the private area is the seq_net_private that seq_file_net() expects.
    let pde = unsafe {
        sys::proc_create_net_data(
            name.as_ptr().cast(),
            0o444,
            net.proc_net_stat(),
            ops,
            core::mem::size_of::<sys::seq_net_private>() as u32,
            core::ptr::null_mut(),
        )
    };
    if pde.is_null() {
        Err(ENOMEM)
    } else {
        Ok(())
    }
}

/// Removes what [`create_stat`] made, waiting for readers to leave.
pub(crate) fn remove_stat(net: &Net, name: &'static CStr) {
    // SAFETY: a missing entry is tolerated by remove_proc_entry (it warns).
    unsafe { sys::remove_proc_entry(name.as_ptr().cast(), net.proc_net_stat()) };
}

/// A `struct seq_file` handed to sequence operations.
///
/// # Invariants
///
/// Wraps a seq_file that is live for the duration of the callback, opened by a file
/// created with [`create_stat`].
pub(crate) struct SeqFile(*mut sys::seq_file);

impl SeqFile {
    /// # Safety
    ///
    /// `ptr` is the seq_file passed to a callback of operations registered through
    /// [`create_stat`], and the value is used only during that callback.
    pub(crate) unsafe fn from_raw(ptr: *mut sys::seq_file) -> Self {
        Self(ptr)
    }

    /// The namespace whose `/proc/net` the file was opened in.
    pub(crate) fn net(&self) -> &Net {
        // SAFETY: the file is a proc_create_net file (type invariant), so seq_file_net() is
        // the namespace it holds a reference on while open.
        unsafe { Net::from_raw(sys::rsynproxy_seq_file_net(self.0)) }
    }

    /// Appends bytes to the output (overflow is retried by seq_file with a bigger buffer).
    pub(crate) fn write(&self, bytes: &[u8]) {
        // SAFETY: the seq_file is live (type invariant); `bytes` is valid for its length.
        unsafe { sys::seq_write(self.0, bytes.as_ptr().cast(), bytes.len()) };
    }
}

/// `SEQ_START_TOKEN`, the start marker for the header line.
pub(crate) fn start_token() -> *mut kernel::ffi::c_void {
    // SAFETY: returns a constant.
    unsafe { sys::rsynproxy_seq_start_token() }
}
