// SPDX-License-Identifier: GPL-2.0

//! Protocol logic with no kernel dependency and no `unsafe`.
//!
//! These files are compiled twice: into rsynproxy.ko (through `rust/rsynproxy_main.rs`) and
//! into the host crate `userspace/proto`, whose `cargo test` exercises them. They may use
//! `core` only. Items are `pub` so the host crate can export them; inside the module the
//! `proto` module itself is private.

#![allow(unreachable_pub)]

pub mod cookie;
pub mod flow;
pub mod info;
pub mod mismatch;
pub mod stats;
pub mod tcp;
pub mod wire;
