/* SPDX-License-Identifier: GPL-2.0 */
/* Kbuild runs bindgen on this to learn the libclang version (a headers package may lack the
 * kernel's own probe, scripts/rust_is_available_bindgen_libclang.h). */
#pragma message("clang " __clang_version__)
