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

# KUNIT=1 builds the test module: the KUnit suite is compiled in only then (never in `make`,
# DKMS or the packages), so a user's rule autoload never runs it.
KUNIT ?=
kbuild = $(MAKE) -C $(KDIR) M=$(CURDIR) RUSTC=$(RUSTC) HOSTRUSTC=$(RUSTC) BINDGEN=$(BINDGEN) \
	CLIPPY_DRIVER=$(CLIPPY_DRIVER) $(if $(CLIPPY),CLIPPY=$(CLIPPY)) \
	$(if $(filter 1,$(KUNIT)),RSYNPROXY_KUNIT=1) $(if $(filter 1,$(BENCH)),RSYNPROXY_BENCH=1)

# What the DKMS source (and so the rsynproxy-dkms package) holds; expanded only when used.
DKMS_SRC = Makefile Kbuild VERSION dkms.conf scripts/check-kdir scripts/kdir-for scripts/rust-overlay \
	rust/sys/bindgen_parameters \
	$(sort $(filter-out rust/sys/bindings_generated.rs, \
		$(shell find rust -name '*.rs' -o -name '*.c' -o -name '*.h')))

.PHONY: all check-kdir modules kbuild-modules modules-clean clean deps kernel test-module plugin check demo bench vm-shell \
	mutants cargo-mutants soak fuzz \
	headers install-dkms-src deb rust-overlay distro-overlay check-distro

all: modules

# One clear line instead of compiler errors when KDIR cannot take the module (dkms.conf too).
# Headers of a Rust kernel without the Rust build files get an overlay instead (kdir-for), whose
# script makes its own checks.
check-kdir:
	@[ "$$($(CURDIR)/scripts/kdir-for --dry-run $(KDIR) $(RUSTC) $(BINDGEN))" = overlay ] || \
		$(CURDIR)/scripts/check-kdir $(KDIR) $(RUSTC) $(BINDGEN)

modules:
	@kdir=$$($(CURDIR)/scripts/kdir-for $(KDIR) $(RUSTC) $(BINDGEN)) && \
		$(CURDIR)/scripts/check-kdir $$kdir $(RUSTC) $(BINDGEN) && \
		$(MAKE) --no-print-directory KDIR=$$kdir kbuild-modules

kbuild-modules:
	+$(kbuild) modules

modules-clean:
	+-test -f $(KDIR)/Makefile && $(kbuild) clean
	rm -f rust/sys/bindings_generated.rs rust/sys/.bindings_generated.rs.cmd

clean: modules-clean
	cd userspace && cargo clean

# The module's source as DKMS wants it: make install-dkms-src DESTDIR=/usr/src/rsynproxy-VERSION
install-dkms-src:
	@test -n "$(DESTDIR)" || { echo "install-dkms-src: set DESTDIR" >&2; exit 1; }
	@for f in $(DKMS_SRC); do install -D -m 0644 $$f $(DESTDIR)/$$f || exit 1; done
	@chmod 0755 $(DESTDIR)/scripts/check-kdir $(DESTDIR)/scripts/kdir-for $(DESTDIR)/scripts/rust-overlay

# --- the project's own environment -----------------------------------------------------------

deps:
	@scripts/deps

kernel: deps
	@scripts/build-kernel

# A minimal headers tree of the test kernel, as a distribution would package it.
headers: kernel
	@scripts/mkheaders $(TEST_KDIR) $(B)/headers/$$(cat $(TEST_KDIR)/include/config/kernel.release)

# The Rust build files a distribution's headers package lacks, rebuilt from its kernel source
# package with its own rustc into /var/cache/rsynproxy/KERNELRELEASE (Documentation/packaging.md).
# HEADERS= the headers directory (default: the running kernel's).
rust-overlay:
	@scripts/rust-overlay $(HEADERS)

# The same inside a trixie chroot in build/distro for Debian's stock Rust kernel KREL
# (trixie-backports): the bed of make check-distro.
KREL ?= 7.3.4+deb13-amd64
distro-overlay:
	@KREL=$(KREL) scripts/distro-chroot -- scripts/rust-overlay /usr/src/linux-headers-$(KREL)

# The packages on Debian's own Rust-enabled kernels (tests/distro/pins: 7.3.4 from
# trixie-backports, 7.2.13 from sid), each booted from Debian's vmlinuz under QEMU: chroot,
# rust-overlay, dpkg-buildpackage, apt install with DKMS, data-path tests (tests/distro/run).
# All kernels of the pins, or the one given as KREL=... on the command line. Not part of check.
check-distro: deps
	@tests/distro/run $(if $(filter command line environment,$(origin KREL)),$(KREL))

# Debian packages in build/deb (Documentation/packaging.md).
deb: deps
	@scripts/build-deb

test-module: kernel
	@$(MAKE) --no-print-directory modules KDIR=$(TEST_KDIR) KUNIT=1

plugin: deps
	@cd userspace && cargo build --release --quiet
	@mkdir -p $(XTLIBDIR) && install -m 0644 userspace/target/release/libxt_rsynproxy.so $(XTLIBDIR)/libxt_RSYNPROXY.so

check: test-module plugin
	@tests/run-all

demo: test-module plugin
	@tests/vm-run -- tests/demo.sh

# Deliberate faults, one at a time: each must make the tests fail (tests/mutants).
mutants: test-module plugin
	@tests/mutants

# cargo-mutants over the host build of the protocol logic (userspace/proto).
cargo-mutants: deps
	@scripts/cargo-mutants

# Coverage-guided fuzzing of rust/proto (tests/fuzz-proto), FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 300
fuzz: deps
	@tests/fuzz-proto --seconds $(FUZZ_SECONDS) --tap

# The hostile battery of make check, long: fuzzing, churn, floods with flows, allocation
# failures (tests/soak; SOAK_* parameters there). About two hours on 2 cores (estimated from
# the short battery's per-test times).
soak: test-module plugin
	@tests/soak

# Performance against the C SYNPROXY (tests/bench/run, Documentation/performance.md): on the
# non-debug variant of the test kernel (tests/kernel-bench.config, build/bench-kernel) with the
# bench build of the module (BENCH=1: rust/bench.rs, never in `make`, DKMS or the packages),
# kept as build/bench/rsynproxy.ko. Never part of check; timing decides nothing.
BENCH_KDIR := $(B)/bench-kernel
.PHONY: kernel-bench bench-module bench-profile

kernel-bench: deps
	@KERNEL_VARIANT=bench scripts/build-kernel

# Built from a copy of the module's source (as DKMS does): Kbuild keeps one .module-common.o
# (the vermagic) per source directory and would not rebuild it for another kernel. The bench
# build (build/bench/rsynproxy.ko) serves the in-kernel timing; the production build against
# the same kernel (build/bench/prod/rsynproxy.ko) serves the parts that need no harness
# (path, flood), so that what they measure, the module's size included, is what ships.
bench-module: kernel-bench
	@rm -rf $(B)/bench/src && $(MAKE) --no-print-directory install-dkms-src DESTDIR=$(B)/bench/src
	@$(MAKE) --no-print-directory -C $(B)/bench/src modules KDIR=$(BENCH_KDIR) BENCH=1
	@cp $(B)/bench/src/rsynproxy.ko $(B)/bench/rsynproxy.ko
	@$(MAKE) --no-print-directory -C $(B)/bench/src modules KDIR=$(BENCH_KDIR)
	@mkdir -p $(B)/bench/prod && cp $(B)/bench/src/rsynproxy.ko $(B)/bench/prod/rsynproxy.ko

bench: bench-module plugin
	@tests/bench/run

# Where the time goes (item 6 of the performance work): tests/bench/kern.sh under perf in the
# bench guest, hottest symbols of each target's run (BENCH_N packets per path, default 3000).
bench-profile: bench-module plugin
	@RSYNPROXY_KERNEL=$(BENCH_KDIR)/arch/x86/boot/bzImage tests/vm-run --no-debug --smp 1 --timeout 1200 \
		--append "rsynproxy.ko=build/bench/rsynproxy.ko rsynproxy.modroot=build/bench-modroot" \
		-- env BENCH_PERF=1 BENCH_N=$${BENCH_N:-3000} bash tests/bench/kern.sh

vm-shell: test-module plugin
	@tests/vm-run -- bash -i

# --- KASAN variant of the debug test kernel ----------------------------------------------------
# 6.12 allows KASAN with Rust only on a clang-built kernel, so this kernel (tests/kernel.config +
# tests/kernel-kasan.config, build/kasan-kernel, release 6.12.117-kasan) and the module built
# against it use LLVM (KASAN_LLVM=-14: clang-14, ld.lld-14, llvm-*-14). `make check-kasan`
# replaces ./rsynproxy.ko with the KASAN build; `make check` rebuilds the GCC one.
KASAN_LLVM ?= -14
KASAN_KDIR := $(B)/kasan-kernel

.PHONY: kernel-kasan test-module-kasan check-kasan

kernel-kasan: deps
	@dpkg-query -W clang-14 lld-14 llvm-14 >/dev/null 2>&1 || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-14 lld-14 llvm-14 >/dev/null
	@KERNEL_VARIANT=kasan KASAN_LLVM=$(KASAN_LLVM) scripts/build-kernel

test-module-kasan: kernel-kasan
	@$(MAKE) --no-print-directory modules KDIR=$(KASAN_KDIR) KUNIT=1 LLVM=$(KASAN_LLVM)

check-kasan: test-module-kasan plugin
	@RSYNPROXY_VARIANT=kasan tests/run-all
