// SPDX-License-Identifier: GPL-2.0

//! RSYNPROXY: the SYNPROXY xtables target, in Rust.
//!
//! C version of this target: `net/netfilter/nf_synproxy_core.c` with
//! `net/ipv4/netfilter/ipt_SYNPROXY.c` and `net/ipv6/netfilter/ip6t_SYNPROXY.c`.
//!
//! Layers:
//! - [`proto`]: protocol logic, no kernel dependency and no `unsafe`; also built and tested on
//!   the host by `userspace/proto`.
//! - [`glue`]: thin wrappers over skb, conntrack, xtables, pernet, proc and per-CPU data; the
//!   only place `unsafe` touches kernel objects.
//! - netfilter wiring: [`target`] (the xtables target) and [`pernet`] (per-namespace state).
//!
//! The flow (see [`proto::flow`] for the diagram): the target answers a client SYN with a
//! syncookie SYN-ACK and, for a client ACK whose cookie checks, sends the backend SYN carrying
//! the per-namespace conntrack template; the hooks at LOCAL_IN and POST_ROUTING (registered
//! per namespace while rules exist) finish the backend handshake, set up seqadj and the
//! timestamp offset, and translate timestamps for the life of the flow. Where this differs
//! from the C code: `Documentation/differences.md`.

use kernel::prelude::*;

module! {
    type: RSynProxy,
    name: "rsynproxy",
    description: "SYN proxy xtables target (RSYNPROXY), in Rust",
    license: "GPL",
    alias: ["ipt_RSYNPROXY", "ip6t_RSYNPROXY"],
}

mod engine;
mod family;
mod glue;
mod pernet;
mod proto;
mod sys;
mod target;

// The KUnit suite: test builds only (`make KUNIT=1`, see Kbuild).
#[cfg(rsynproxy_kunit)]
mod ktests;

// The in-kernel per-packet bench: bench builds only (`make BENCH=1`, see Kbuild).
#[cfg(rsynproxy_bench)]
mod bench;

struct RSynProxy {
    // Fields drop in order: the bench (which calls the targets) first, then the targets,
    // before the per-namespace state they use.
    #[cfg(rsynproxy_bench)]
    _bench: bench::Registration,
    _targets: glue::xt::Registration<2>,
    _pernet: glue::pernet::Registration,
}

impl kernel::Module for RSynProxy {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let pernet = pernet::register()?;
        let targets = target::register(module)?;
        Ok(RSynProxy {
            #[cfg(rsynproxy_bench)]
            _bench: bench::register()?,
            _targets: targets,
            _pernet: pernet,
        })
    }
}
