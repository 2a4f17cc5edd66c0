# SPDX-License-Identifier: GPL-2.0
# RSYNPROXY: `make` builds rsynproxy.ko against KDIR; `make check` and `make demo` set up
# everything on a Debian bookworm machine (root) and run in a QEMU guest.
# The module itself is described by Kbuild.

KDIR ?= /lib/modules/$(shell uname -r)/build
# The kernel's Rust code and the module must come from the same rustc: Debian's, not rustup's.
RUSTC ?= /usr/bin/rustc
BINDGEN ?= $(firstword $(wildcard $(HOME)/.cargo/bin/bindgen) bindgen)
CLIPPY_DRIVER ?= /usr/bin/clippy-driver

B := $(CURDIR)/build
TEST_KDIR := $(B)/kernel
XTLIBDIR := $(B)/xtables

kbuild = $(MAKE) -C $(KDIR) M=$(CURDIR) RUSTC=$(RUSTC) HOSTRUSTC=$(RUSTC) BINDGEN=$(BINDGEN) \
	CLIPPY_DRIVER=$(CLIPPY_DRIVER) $(if $(CLIPPY),CLIPPY=$(CLIPPY))

.PHONY: all modules clean deps kernel test-module plugin check demo bench vm-shell

all: modules

modules:
	@test -f $(KDIR)/Makefile || { echo "KDIR=$(KDIR) is not a kernel build tree (make KDIR=...)" >&2; exit 1; }
	@grep -q '^CONFIG_RUST=y' $(KDIR)/.config 2>/dev/null || \
		{ echo "$(KDIR): kernel built without CONFIG_RUST=y; rsynproxy.ko needs a Rust-enabled kernel" >&2; exit 1; }
	$(kbuild) modules

clean:
	-test -f $(KDIR)/Makefile && $(kbuild) clean
	rm -f rust/sys/bindings_generated.rs rust/sys/.bindings_generated.rs.cmd
	cd userspace && cargo clean

# --- the project's own environment -----------------------------------------------------------

deps:
	@scripts/deps

kernel: deps
	@scripts/build-kernel

test-module: kernel
	@$(MAKE) --no-print-directory modules KDIR=$(TEST_KDIR)

plugin: deps
	@cd userspace && cargo build --release --quiet
	@mkdir -p $(XTLIBDIR) && install -m 0644 userspace/target/release/libxt_rsynproxy.so $(XTLIBDIR)/libxt_RSYNPROXY.so

check: test-module plugin
	@tests/run-all

demo: test-module plugin
	@tests/vm-run -- tests/demo.sh

bench: test-module plugin
	@tests/vm-run --timeout 3000 -- tests/bench.sh

vm-shell: test-module plugin
	@tests/vm-run -- bash -i
