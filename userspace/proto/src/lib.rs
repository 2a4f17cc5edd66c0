//! The kernel module's protocol layer (`rust/proto`), compiled for the host so that `cargo
//! test` exercises exactly the code rsynproxy.ko runs, and so that userspace tools share it.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "../../../rust/proto/mod.rs"]
mod kernel_proto;

pub use kernel_proto::*;

pub mod c_reference;

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
