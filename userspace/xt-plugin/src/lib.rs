//! libxt_RSYNPROXY.so: the iptables / ip6tables extension for the `RSYNPROXY` target.
//!
//! libxtables dlopen()s this file from its plugin directories when a rule names the target;
//! an ELF constructor registers it. The kernel ABI is SYNPROXY's (`struct xt_synproxy_info`),
//! the option handling is libxt_SYNPROXY's with range checks added, and there is no `xlate`:
//! nftables has no RSYNPROXY.

pub mod options;

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    clippy::all,
    missing_docs
)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/xtables.rs"));
}

use options::{Value, OPTIONS};
use rsynproxy_proto::info::Info;
use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CString};

/// A registration struct that libxtables links into its lists and writes to.
#[repr(transparent)]
struct Shared<T>(UnsafeCell<T>);

// SAFETY: iptables is single-threaded; after registration only libxtables touches the
// contents, through the pointer it was given.
unsafe impl<T> Sync for Shared<T> {}

const fn option_entry(i: usize) -> sys::xt_option_entry {
    // SAFETY: all-zero is a valid option entry (and the table terminator).
    let mut e: sys::xt_option_entry = unsafe { std::mem::zeroed() };
    if i == OPTIONS.len() {
        return e;
    }
    let o = &OPTIONS[i];
    e.name = o.name.as_ptr();
    e.id = i as u32;
    e.type_ = match o.value {
        Value::Flag => sys::xt_option_type::XTTYPE_NONE,
        Value::Wscale => sys::xt_option_type::XTTYPE_UINT8,
        Value::Mss => sys::xt_option_type::XTTYPE_UINT16,
    };
    // libxtables refuses values outside [min, max] with "bad value for option".
    let (min, max) = o.value.range();
    e.min = min;
    e.max = max;
    e
}

static X6_OPTIONS: Shared<[sys::xt_option_entry; OPTIONS.len() + 1]> = Shared(UnsafeCell::new([
    option_entry(0),
    option_entry(1),
    option_entry(2),
    option_entry(3),
    option_entry(4),
    option_entry(5),
]));

/// XT_ALIGN(sizeof(struct xt_synproxy_info)).
const SIZE: usize = (std::mem::size_of::<sys::nf_synproxy_info>() + 7) & !7;

static TARGET: Shared<sys::xtables_target> = Shared(UnsafeCell::new({
    // SAFETY: all-zero is a valid xtables_target (no callbacks).
    let mut t: sys::xtables_target = unsafe { std::mem::zeroed() };
    t.version = sys::XTABLES_VERSION.as_ptr().cast();
    t.name = c"RSYNPROXY".as_ptr();
    t.family = sys::NFPROTO_UNSPEC as u16;
    t.size = SIZE;
    t.userspacesize = SIZE;
    t.help = Some(help);
    t.print = Some(print);
    t.save = Some(save);
    t.x6_parse = Some(parse);
    t.x6_options = X6_OPTIONS.0.get().cast();
    t
}));

/// Registers the target with libxtables (the constructor; tests call it after init).
fn register() {
    // SAFETY: TARGET and its option table are statics with the layout xtables.h declares
    // (bindgen); libxtables keeps the pointer for the life of the process.
    unsafe { sys::xtables_register_target(TARGET.0.get()) };
}

#[cfg(not(test))]
#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = {
    extern "C" fn init() {
        register();
    }
    init
};

extern "C" {
    fn printf(fmt: *const c_char, ...) -> c_int;
}

/// Writes through C's stdio, which iptables uses for the rest of the line.
fn c_print(s: &str) {
    let s = CString::new(s).unwrap_or_default();
    // SAFETY: "%s" with one NUL-terminated string.
    unsafe { printf(c"%s".as_ptr(), s.as_ptr()) };
}

/// # Safety
///
/// `data` points to the target's `struct xt_synproxy_info`.
unsafe fn info_of(data: *const c_void) -> Info {
    // SAFETY: per the function contract.
    let raw = unsafe { &*data.cast::<sys::nf_synproxy_info>() };
    Info {
        options: raw.options,
        wscale: raw.wscale,
        mss: raw.mss,
    }
}

/// # Safety
///
/// `t` is an `xt_entry_target` of this target, followed by its data.
unsafe fn target_info(t: *const sys::xt_entry_target) -> Info {
    // SAFETY: the data follows the header (xt_entry_target.data is a flexible array).
    unsafe {
        info_of(
            t.cast::<u8>()
                .add(std::mem::size_of::<sys::xt_entry_target>())
                .cast(),
        )
    }
}

extern "C" fn help() {
    c_print(&options::help());
}

/// # Safety
///
/// Called by libxtables with an option call for this target (`cb->data` is its blob).
unsafe extern "C" fn parse(cb: *mut sys::xt_option_call) {
    // SAFETY: libxtables' own parser for our table; it exits on a bad value.
    unsafe { sys::xtables_option_parse(cb) };
    // SAFETY: a valid option call (function contract).
    let cb = unsafe { &*cb };
    // SAFETY: `entry` points into our table, whose ids index OPTIONS.
    let Some(opt) = OPTIONS.get(unsafe { (*cb.entry).id } as usize) else {
        return;
    };
    // SAFETY: `data` is the target's blob (function contract).
    let info = unsafe { &mut *cb.data.cast::<sys::nf_synproxy_info>() };
    info.options |= opt.bit;
    // SAFETY: libxtables filled the union member for the entry's type.
    match opt.value {
        Value::Flag => {}
        Value::Wscale => info.wscale = unsafe { cb.val.u8_ },
        Value::Mss => info.mss = unsafe { cb.val.u16_ },
    }
}

/// # Safety
///
/// Called by libxtables with a target of this extension.
unsafe extern "C" fn print(_ip: *const c_void, t: *const sys::xt_entry_target, _numeric: c_int) {
    // SAFETY: function contract.
    c_print(&options::print(&unsafe { target_info(t) }));
}

/// # Safety
///
/// Called by libxtables with a target of this extension.
unsafe extern "C" fn save(_ip: *const c_void, t: *const sys::xt_entry_target) {
    // SAFETY: function contract.
    c_print(&options::save(&unsafe { target_info(t) }));
}

#[cfg(test)]
mod tests;
