#!/bin/bash
# Packaging tests on the host (root), called by tests/run-all around the VM run:
#
#   tests/packaging.sh install   build the minimal headers tree and the Debian packages,
#                                lintian, install them with apt, DKMS against the headers
#   tests/packaging.sh remove    purge the packages again (after the VM used them)
#
# The VM half is tests/guest/50-packages.sh: the installed plugin without XTABLES_LIBDIR,
# the installed tool, and the DKMS-built module loading and proxying.
# Prints TAP lines like the guest tests, through the same `t` (tests/guest/lib.sh): each test
# runs in a subshell with errexit, so every check is a bare command or `cond || fail`.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
. tests/guest/lib.sh
B=$top/build
OUT=${RSYNPROXY_OUT:-$B/test-out}
mkdir -p "$OUT"
KVER=$(cat "$B/kernel/include/config/kernel.release")
VERSION=$(cat VERSION)
HDR=$B/headers/$KVER
DKMS=$B/dkms
RUSTC=/usr/bin/rustc
BINDGEN=$(command -v "$HOME/.cargo/bin/bindgen" || command -v bindgen)
export DEBIAN_FRONTEND=noninteractive

dkms_() { dkms --dkmstree "$DKMS/tree" --sourcetree "$DKMS/src" --installtree "$DKMS/modules" "$@"; }

# kbuild_in DIR KDIR: build the module from the source copy DIR against KDIR, straight through
# Kbuild (no scripts/check-kdir), output in DIR/build.log.
kbuild_in() {
	rm -f "$1"/rsynproxy.ko "$1"/rust/*.o "$1"/rust/sys/*.o "$1"/rust/sys/bindings_generated.rs
	make -C "$2" M="$1" RUSTC=$RUSTC HOSTRUSTC=$RUSTC BINDGEN="$BINDGEN" modules >"$1/build.log" 2>&1
}

versions_agree() {
	local dk cargo deb
	dk=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
	cargo=$(sed -n 's/^version = "\(.*\)"/\1/p' userspace/Cargo.toml)
	deb=$(dpkg-parsechangelog -SVersion)
	expect_eq "dkms.conf, Cargo.toml, debian/changelog versions" "$dk $cargo $deb" "$VERSION $VERSION $VERSION"
}

# --- the minimal headers tree ----------------------------------------------------------------
headers_tree() {
	scripts/mkheaders "$B/kernel" "$HDR" >&2
	[ -f "$HDR/.config" ] && [ -f "$HDR/Makefile" ] || fail "no headers tree at $HDR"
	local junk
	# scripts/ keeps the host tools' C sources, as every headers package does.
	junk=$(find "$HDR" \( -name vmlinux -o -name '*.o' -o -name '*.ko' -o -name '*.a' \) -print -o \
		-path "$HDR/scripts" -prune -o -name '*.c' -print | sed -n 1,10p)
	[ -z "$junk" ] || fail "headers tree holds build objects or kernel sources: $junk"
}

# Each Rust artefact the headers tree adds is needed: without it the module does not build.
# The sufficiency half is the DKMS build below.
rust_files_needed() {
	local src=/tmp/rsp-needed f bad=
	rm -rf $src
	make -s install-dkms-src DESTDIR=$src
	if ! kbuild_in $src "$HDR"; then
		tail -n 20 $src/build.log >&2
		fail "module does not build against the full headers tree"
	fi
	[ -f $src/rsynproxy.ko ] || fail "the full headers tree built no rsynproxy.ko"
	local rustfiles
	rustfiles=$(cd "$HDR" && ls rust/*)
	[ -n "$rustfiles" ] || fail "no rust/ files in $HDR"
	for f in $rustfiles scripts/target.json include/generated/rustc_cfg; do
		mv "$HDR/$f" "$HDR/$f.away"
		if kbuild_in $src "$HDR" && [ -f $src/rsynproxy.ko ]; then bad="$bad $f"; fi
		mv "$HDR/$f.away" "$HDR/$f"
		echo "without $f: $(grep -m1 -E 'error|Error' $src/build.log | cut -c1-100 || true)" >&2
	done
	rm -rf $src
	[ -z "$bad" ] || fail "the module still builds without:$bad (drop them from scripts/mkheaders)"
}

# --- clear errors from scripts/check-kdir ----------------------------------------------------
# variant NAME: a hard-linked copy of the headers tree to break on purpose.
variant() {
	rm -rf "$B/headers/$1"
	cp -al "$HDR" "$B/headers/$1"
	echo "$B/headers/$1"
}

# The two broken trees, used by the make and the dkms tests alike.
norust_tree() { # a kernel configured without Rust
	local k
	k=$(variant norust)
	rm "$k/.config"
	grep -v '^CONFIG_RUST=' "$HDR/.config" >"$k/.config"
	echo "$k"
}

nort_tree() { # headers without rust/
	local k
	k=$(variant nort)
	rm -r "$k/rust"
	echo "$k"
}

# make_fails KDIR [VAR=VALUE...]: `make modules` must fail at once, with a one-line reason
# from check-kdir and no compiler run: make's output (not silenced) names no compiler step,
# and the source copy holds no build product afterwards.
make_fails() {
	local kdir=$1 src=/tmp/rsp-fail out built
	shift
	rm -rf $src
	make -s install-dkms-src DESTDIR=$src
	if out=$(make -C $src KDIR="$kdir" RUSTC=$RUSTC "$@" modules 2>&1); then
		fail "make succeeded against $kdir: $out"
	fi
	if grep -Eq '^ +(RUSTC \[M\]|BINDGEN |CC \[M\]|LD \[M\])|error\[' <<<"$out"; then
		fail "compilers ran: $out"
	fi
	built=$(find $src \( -name '*.o' -o -name '*.ko' -o -name '*.rmeta' -o -name '.*.cmd' \
		-o -name bindings_generated.rs -o -name modules.order \) -print)
	[ -z "$built" ] || fail "make against $kdir left build products: $built"
	rm -rf $src
	echo "$out"
}

no_rust_kernel() {
	local out
	out=$(make_fails "$(norust_tree)")
	grep -q "was built without Rust support (CONFIG_RUST=y is not set)" <<<"$out" || fail "unclear: $out"
}

headers_without_rust() {
	local out
	# RUST_OVERLAY=0: check-kdir's own verdict; with the overlay (the default) make would
	# rebuild the files from linux-source-6.12 instead (make check-distro tests that path).
	out=$(RUST_OVERLAY=0 make_fails "$(nort_tree)")
	grep -q "lacks the Rust build artefacts: rust/libcore.rmeta" <<<"$out" || fail "unclear: $out"
}

other_rustc() {
	local fake=/tmp/rsp-rustc out
	printf '#!/bin/sh\necho "rustc 1.0.0 (0000000 1970-01-01)"\n' >$fake
	chmod +x $fake
	out=$(make_fails "$HDR" RUSTC=$fake)
	rm -f $fake
	grep -q "was built with 'rustc .*' but RUSTC=$fake is 'rustc 1.0.0" <<<"$out" || fail "unclear: $out"
}

# --- Debian packages -------------------------------------------------------------------------
# The packages of the last build (each test runs in a subshell, so no shared variable).
debs() { ls "$B"/deb/rsynproxy_"$VERSION"_*.deb "$B"/deb/rsynproxy-dkms_"$VERSION"_all.deb; }

build_debs() {
	scripts/build-deb >&2
	debs >/dev/null
}

lintian_clean() {
	local log=$OUT/lintian.log rc=0
	lintian --fail-on error --display-info "$B"/deb/*.changes >"$log" 2>&1 || rc=$?
	cat "$log" >&2
	if grep -q '^E:' "$log"; then fail "lintian reports errors"; fi
	[ $rc = 0 ] || fail "lintian exit status $rc"
}

deb_contents() {
	local xtlib missing= f list d
	xtlib=$(pkg-config --variable=xtlibdir xtables)
	[ -n "$xtlib" ] || fail "pkg-config gives no xtables directory"
	local files
	files=$(debs)
	list=$(for d in $files; do dpkg-deb -c "$d"; done | awk '{print $6}' | sed 's|^\./|/|')
	for f in "$xtlib/libxt_RSYNPROXY.so" /usr/sbin/rsynproxy /usr/share/man/man8/rsynproxy.8.gz \
		/usr/share/man/man8/iptables-rsynproxy.8.gz /usr/share/bash-completion/completions/rsynproxy \
		"/usr/src/rsynproxy-$VERSION/dkms.conf" "/usr/src/rsynproxy-$VERSION/Kbuild" \
		"/usr/src/rsynproxy-$VERSION/rust/rsynproxy_main.rs" "/usr/src/rsynproxy-$VERSION/scripts/check-kdir"; do
		grep -qxF "$f" <<<"$list" || missing="$missing $f"
	done
	[ -z "$missing" ] || fail "missing from the packages:$missing"
}

apt_install() {
	# A leftover installation from an interrupted run (none is the usual case).
	dpkg --purge rsynproxy rsynproxy-dkms >/dev/null 2>&1 || true
	local list
	list=$(debs)
	local -a pkgs=($list)
	apt-get install -y -q "${pkgs[@]}" >&2
	local p st
	for p in rsynproxy rsynproxy-dkms; do
		expect_eq "$p status" "$(dpkg-query -W -f='${Status}' $p)" "install ok installed"
	done
	st=$(dkms status rsynproxy)
	grep -q "rsynproxy/$VERSION" <<<"$st" || fail "the package did not register with dkms: $st"
}

installed_plugin_on_host() {
	local out
	out=$(env -u XTABLES_LIBDIR iptables -j RSYNPROXY -h 2>&1) || fail "$out"
	grep -q -- '--sack-perm' <<<"$out" || fail "help text lacks the RSYNPROXY options: $out"
}

installed_man_pages() {
	local p err
	for p in rsynproxy iptables-rsynproxy; do
		man -w "$p" >/dev/null || fail "man cannot find $p"
		err=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings "$p" 2>&1 >/dev/null)
		[ -z "$err" ] || fail "man $p warns: $err"
	done
}

installed_completion() {
	bash -c '. /usr/share/bash-completion/completions/rsynproxy && complete -p rsynproxy' >/dev/null ||
		fail "the bash completion does not register"
}

# --- DKMS: the packaged source, built against the minimal headers tree -------------------------
dkms_install() {
	rm -rf "$DKMS"
	mkdir -p "$DKMS/tree" "$DKMS/src" "$DKMS/modules"
	# The test kernel's own modules stand in for /lib/modules/$KVER.
	cp -al "$B/modroot/lib/modules/$KVER" "$DKMS/modules/$KVER"
	ln -s "/usr/src/rsynproxy-$VERSION" "$DKMS/src/rsynproxy-$VERSION"
	local stamp=$DKMS/stamp
	touch "$stamp"
	sleep 1
	dkms_ add -m rsynproxy -v "$VERSION" >&2
	if ! dkms_ build -m rsynproxy -v "$VERSION" -k "$KVER" --kernelsourcedir "$HDR" >&2; then
		cat "$DKMS/tree/rsynproxy/$VERSION/build/make.log" >&2 || true
		fail "dkms build failed"
	fi
	dkms_ install -m rsynproxy -v "$VERSION" -k "$KVER" --kernelsourcedir "$HDR" --no-depmod >&2
	local st
	st=$(dkms_ status)
	grep -q "rsynproxy/$VERSION, $KVER, .*: installed" <<<"$st" || fail "dkms status: $st"
	local ko=$DKMS/modules/$KVER/updates/dkms/rsynproxy.ko
	[ -f "$ko" ] || fail "no $ko"
	expect_eq "module version and vermagic" "$(modinfo -F version "$ko") $(modinfo -F vermagic "$ko" | cut -d' ' -f1)" "$VERSION $KVER"
	grep -q "^make -C $HDR M=" "$DKMS/tree/rsynproxy/$VERSION/$KVER/x86_64/log/make.log" ||
		fail "DKMS did not build against $HDR"
	# A headers tree is read-only input: the build wrote nothing into it.
	local written
	written=$(find "$HDR" -newer "$stamp" | sed -n 1,10p)
	[ -z "$written" ] || fail "the build wrote into the headers tree: $written"
}

# The production module DKMS built carries no KUnit suite (built only by `make KUNIT=1`): a
# user's rule autoload must never run it.
dkms_no_kunit() {
	local ko=$DKMS/modules/$KVER/updates/dkms/rsynproxy.ko sections
	[ -f "$ko" ] || fail "no $ko"
	sections=$(readelf -SW "$ko")
	grep -qF ' .text' <<<"$sections" || fail "readelf -S shows no sections: $sections"
	if grep -F '.kunit' <<<"$sections" >&2; then
		fail "the DKMS-built module has KUnit sections: its suite would run at every load"
	fi
}

dkms_skips_no_rust() {
	local k out rc=0 stamp=$DKMS/stamp.norust built
	k=$(norust_tree)
	touch "$stamp"
	sleep 1
	# A kernel release of its own, so that the build already made for $KVER does not answer.
	out=$(dkms_ build -m rsynproxy -v "$VERSION" -k "$KVER-norust" --kernelsourcedir "$k" 2>&1) || rc=$?
	printf '%s\n' "$out" >&2
	expect_eq "dkms status for a kernel without Rust" "$rc" 77
	grep -q "was built without Rust support" <<<"$out" || fail "no reason given"
	if grep -q "Building module" <<<"$out"; then fail "dkms started a build"; fi
	# dkms prepares a build by copying the source to build/ and then runs make: neither
	# happened (ctime, which a copy cannot preserve).
	built=
	if [ -d "$DKMS/tree/rsynproxy/$VERSION/build" ]; then
		built=$(find "$DKMS/tree/rsynproxy/$VERSION/build" -cnewer "$stamp" -print | sed -n 1,5p)
	fi
	[ -z "$built" ] || fail "dkms prepared or ran a build: $built"
	[ ! -e "$DKMS/tree/rsynproxy/$VERSION/$KVER-norust" ] || fail "dkms made a build for $KVER-norust"
}

dkms_names_missing_rust_files() {
	local k out rc=0
	k=$(nort_tree)
	out=$(RUST_OVERLAY=0 dkms_ build -m rsynproxy -v "$VERSION" -k "$KVER-nort" --kernelsourcedir "$k" 2>&1) || rc=$?
	printf '%s\n' "$out" >&2
	[ "$rc" != 0 ] || fail "dkms built without the Rust files"
	[ ! -e "$DKMS/tree/rsynproxy/$VERSION/$KVER-nort/x86_64/module" ] || fail "dkms stored a module for $KVER-nort"
	grep -q "lacks the Rust build artefacts: rust/libcore.rmeta" <<<"$out" || fail "dkms output does not name the missing files"
}

install() {
	t "versions agree: VERSION, dkms.conf, Cargo workspace, debian/changelog" versions_agree
	t "headers: scripts/mkheaders makes a tree without objects, vmlinux or kernel sources" headers_tree
	t "headers: every Rust artefact in the tree is needed (the module fails to build without each)" rust_files_needed
	t "check-kdir: kernel without CONFIG_RUST fails at once with a clear reason" no_rust_kernel
	t "check-kdir: headers without the Rust artefacts fail at once, naming the files" headers_without_rust
	t "check-kdir: a rustc other than the kernel's fails at once, naming both" other_rustc
	t "deb: dpkg-buildpackage -us -uc -b builds rsynproxy and rsynproxy-dkms" build_debs
	t "deb: lintian reports no errors" lintian_clean
	t "deb: plugin in the xtables dir, tool, man pages, completion, DKMS source" deb_contents
	t "deb: both packages install with apt and register with dkms" apt_install
	t "deb: iptables on the host finds the installed plugin without XTABLES_LIBDIR" installed_plugin_on_host
	t "deb: man finds both installed pages and renders them without warnings" installed_man_pages
	t "deb: the bash completion registers" installed_completion
	t "dkms: add, build against the minimal headers tree, install (packaged source)" dkms_install
	t "dkms: the DKMS-built module has no .kunit_test_suites section (KUnit only in make KUNIT=1)" dkms_no_kunit
	t "dkms: a kernel without Rust is skipped before any build (status 77) with the reason" dkms_skips_no_rust
	t "dkms: headers without the Rust files fail, and dkms's output names them" dkms_names_missing_rust_files
}

remove() {
	purge() {
		local xtlib f p st
		xtlib=$(pkg-config --variable=xtlibdir xtables)
		[ -n "$xtlib" ] || fail "pkg-config gives no xtables directory"
		# Installed before: the purge below has something to remove.
		for p in rsynproxy rsynproxy-dkms; do
			st=$(dpkg-query -W -f='${Status}' $p 2>&1 || true)
			[ "$st" = "install ok installed" ] || fail "$p is not installed before the purge: $st"
		done
		apt-get purge -y -q rsynproxy rsynproxy-dkms >&2
		for p in rsynproxy rsynproxy-dkms; do
			st=$(dpkg-query -W -f='${Status}' $p 2>&1 || true)
			case $st in
			*"not-installed"* | *"no packages found"*) ;;
			*) fail "$p after the purge: $st" ;;
			esac
		done
		for f in "$xtlib/libxt_RSYNPROXY.so" /usr/sbin/rsynproxy "/usr/src/rsynproxy-$VERSION" \
			/usr/share/man/man8/rsynproxy.8.gz /usr/share/bash-completion/completions/rsynproxy; do
			[ ! -e "$f" ] || fail "$f left behind"
		done
		st=$(dkms status rsynproxy)
		if grep -q rsynproxy <<<"$st"; then fail "dkms still lists rsynproxy: $st"; fi
	}
	t "deb: both packages purge cleanly" purge
}

case "${1:-}" in
install | remove) "$1" ;;
one) t "$2" "$2" ;; # one test by its function name, while working on it
*) echo "usage: tests/packaging.sh install|remove" >&2; exit 2 ;;
esac
