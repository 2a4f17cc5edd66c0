#!/bin/bash
# What the Debian packages and DKMS put on the host (tests/packaging.sh install, run before
# this VM boot; the guest's root is the host's): iptables finds the installed plugin with no
# XTABLES_LIBDIR, the installed tool works, and the module DKMS built against the minimal
# headers tree is the one that loads and proxies.
. "$(dirname "$0")/topo.sh"

KVER=$(uname -r)
VERSION=$(cat "$RSYNPROXY_TOP/VERSION")
DKMS_KO=$RSYNPROXY_TOP/build/dkms/modules/$KVER/updates/dkms/rsynproxy.ko
OPTS="--sack-perm --timestamp --wscale 7 --mss 1460"

installed() {
	local st
	st=$(dpkg-query -W -f='${Status}' "$1" 2>&1 || true)
	[ "$st" = "install ok installed" ] ||
		fail "package $1 is not installed (tests/packaging.sh install runs before the VM): $st"
}

# bare NS CMD...: run in a namespace with no XTABLES_LIBDIR, so iptables searches only its
# built-in directory, where the package installs the plugin.
bare() {
	local ns=$1
	shift
	env -u XTABLES_LIBDIR ip netns exec "$ns" "$@"
}

# build_id KO: the GNU build ID of a module file, in hex.
build_id() {
	local id
	id=$(readelf -n "$1" | sed -n 's/^ *Build ID: *//p')
	[ -n "$id" ] || fail "$1 has no build ID"
	echo "$id"
}

# The installed plugin, found by each iptables flavour through its built-in directory only.
plugin_without_libdir() {
	installed rsynproxy
	local ipt ns=pkg before want="-A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY $OPTS"
	for ipt in iptables-nft iptables-legacy ip6tables-nft ip6tables-legacy; do
		netns $ns
		bare $ns $ipt -A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY $OPTS ||
			fail "$ipt refused the rule"
		expect_eq "$ipt -S" "$(bare $ns $ipt -S INPUT | tail -n 1)" "$want"
		before=$(bare $ns $ipt-save | grep -v '^#')
		bare $ns $ipt -F
		[ -z "$(bare $ns $ipt -S INPUT | grep -- '-j RSYNPROXY' || true)" ] || fail "$ipt -F left the rule"
		printf '%s\n' "$before" | bare $ns $ipt-restore || fail "$ipt-restore failed"
		expect_eq "$ipt-save after restore" "$(bare $ns $ipt-save | grep -v '^#')" "$before"
		ip netns del $ns
	done
}

installed_tool() {
	installed rsynproxy
	expect_eq "rsynproxy --version" "$(/usr/sbin/rsynproxy --version)" "rsynproxy $VERSION"
	netns pkgt
	bare pkgt iptables -A INPUT -p tcp -j RSYNPROXY $OPTS
	local out want got
	out=$(/usr/sbin/rsynproxy stats --netns pkgt --json) || fail "stats: $out"
	want=$(stat_sum pkgt rsynproxy)
	got=$(python3 -c '
import json, sys
objs = [json.loads(line) for line in sys.stdin.read().splitlines() if line.strip()]
t = [o["totals"] for o in objs if o["file"] == "rsynproxy"]
assert len(t) == 1, objs
print(" ".join(str(t[0][k]) for k in ("syn_received", "cookie_invalid", "cookie_valid",
                                      "cookie_retrans", "conn_reopened")))' <<<"$out") ||
		fail "stats --json has no rsynproxy totals: $out"
	expect_eq "stats --json totals vs /proc/net/stat/rsynproxy" "$got" "$want"
	ip netns del pkgt
}

# Swap the module tree's rsynproxy.ko for the one `dkms install` put in updates/dkms, as on a
# machine where only the package provides it; the loaded module must be that file (its build
# ID, which differs from the test build's).
dkms_module_loads() {
	[ -f "$DKMS_KO" ] || fail "no DKMS-installed module at $DKMS_KO"
	local tree=/tmp/modroot/lib/modules/$KVER
	[ -f "$tree/extra/rsynproxy.ko" ] || fail "no test build at $tree/extra/rsynproxy.ko"
	local dkms_id test_id
	dkms_id=$(build_id "$DKMS_KO")
	test_id=$(build_id "$tree/extra/rsynproxy.ko")
	[ "$dkms_id" != "$test_id" ] || fail "the DKMS and the test build are the same binary ($dkms_id): nothing to tell apart"
	ip -all netns delete
	local i
	for i in $(seq 50); do
		loaded rsynproxy || break
		rmmod rsynproxy 2>/dev/null || sleep 0.2
	done
	! loaded rsynproxy || fail "rsynproxy stays loaded: $(grep rsynproxy /proc/modules)"
	rm "$tree/extra/rsynproxy.ko"
	mkdir -p "$tree/updates"
	cp -r "$(dirname "$DKMS_KO")" "$tree/updates/"
	depmod -b /tmp/modroot "$KVER"
	expect_eq "modinfo -n rsynproxy" "$(modinfo -b /tmp/modroot -k "$KVER" -n rsynproxy)" "$tree/updates/dkms/rsynproxy.ko"
	# Autoload through the rule, as in use.
	netns pkgd
	inns pkgd iptables -A INPUT -p tcp -j RSYNPROXY $OPTS
	loaded rsynproxy || fail "the rule did not load the module"
	expect_eq "/sys/module/rsynproxy/version" "$(cat /sys/module/rsynproxy/version)" "$VERSION"
	local note
	note=$(od -An -tx1 -v /sys/module/rsynproxy/notes/.note.gnu.build-id | tr -d ' \n')
	[[ $note == *"$dkms_id" ]] || fail "the loaded module's build ID note ($note) is not the DKMS build's ($dkms_id; test build $test_id)"
	ip netns del pkgd
}

# The production build carries no KUnit suite: autoloading it ran none (the test build's
# results directory went with its unload).
dkms_module_no_kunit() {
	loaded rsynproxy || fail "the DKMS module is not loaded"
	[ ! -e /sys/kernel/debug/kunit/rsynproxy ] ||
		fail "a KUnit suite ran when the DKMS module loaded: $(ls /sys/kernel/debug/kunit/rsynproxy)"
}

dkms_module_proxies() {
	loaded rsynproxy || fail "the DKMS module is not loaded"
	topo_up
	proxy_rules 4 forward RSYNPROXY $OPTS
	local dst before after
	dst=$(addr 4 s)
	ip netns exec s python3 "$TOOLS/xfer.py" server "$dst" 8080 --count 1 >/tmp/pkg.srv 2>&1 &
	local srv=$!
	bg_track $srv
	wait_for grep -q listening /tmp/pkg.srv || fail "server did not start: $(cat /tmp/pkg.srv)"
	before=$(stat_sum r rsynproxy)
	inns c python3 "$TOOLS/xfer.py" client "$dst" 8080 50000 50000 --seed 3 || fail "transfer failed"
	after=$(stat_sum r rsynproxy)
	wait $srv || fail "the server failed: $(cat /tmp/pkg.srv)"
	expect_eq "counter deltas" "$(stat_delta "$before" "$after")" "1 0 1 0 0"
	ip -all netns delete
}

t "deb: iptables/ip6tables (nft, legacy) find the installed plugin without XTABLES_LIBDIR; save/restore" plugin_without_libdir
t "deb: the installed rsynproxy tool runs and reads the counters (JSON equals the proc file)" installed_tool
t "dkms: the module DKMS built from the minimal headers loads by autoload (updates/dkms, its build ID, version $VERSION)" dkms_module_loads
t "dkms: the autoloaded DKMS module runs no KUnit suite" dkms_module_no_kunit
t "dkms: the DKMS-built module proxies a connection byte-exact, counters 1 0 1 0 0" dkms_module_proxies
