//! The kernel module's protocol layer (`rust/proto`), compiled for the host so that `cargo
//! test` exercises exactly the code rsynproxy.ko runs, and so that userspace tools share it.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "../../../rust/proto/mod.rs"]
mod kernel_proto;

pub use kernel_proto::*;

pub mod c_reference;

/// [`tcp::shift_timestamp`] over a whole option area, as one call: `changed(at, old, new)` for
/// each rewritten word (`at` its offset in `opts`). rsynproxy.ko makes the calls itself,
/// fixing the checksum after each word; the tests and fuzz targets check the walk this way.
pub fn adjust_timestamps(
    opts: &mut [u8],
    dir: tcp::Dir,
    tsoff: u32,
    mut changed: impl FnMut(usize, u32, u32),
) {
    if tsoff == 0 {
        return;
    }
    let mut i = 0;
    while let Some((at, old, new)) = tcp::shift_timestamp(opts, &mut i, dir, tsoff) {
        changed(at, old, new);
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_mismatch;
#[cfg(test)]
mod tests_prop;
#[cfg(test)]
mod tests_tcp;
#[cfg(test)]
mod tests_wire;
