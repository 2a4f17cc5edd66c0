//! Generates the libxtables bindings from the system's `xtables.h` (libxtables-dev), so the
//! plugin's structs are the header's, not a hand copy.

use std::{env, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=src/xtables.h");
    println!("cargo:rustc-link-lib=xtables");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("xtables.rs");
    bindgen::Builder::default()
        .header("src/xtables.h")
        .allowlist_type("xtables_target|xt_option_entry|xt_option_call|xtables_globals")
        .allowlist_type("xt_entry_target|nf_synproxy_info")
        .allowlist_function("xtables_register_target|xtables_option_parse|xtables_init_all")
        .allowlist_var("XTABLES_VERSION|XTABLES_VERSION_CODE|XT_EXTENSION_MAXNAMELEN|xt_params")
        .allowlist_var("NFPROTO_(UNSPEC|IPV4|IPV6)")
        .rustified_enum("xt_option_type")
        .layout_tests(true)
        .generate()
        .expect("bindgen on xtables.h (is libxtables-dev installed?)")
        .write_to_file(out)
        .unwrap();
}
