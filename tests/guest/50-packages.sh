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
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ] ||
		fail "package $1 is not installed (tests/packaging.sh install runs before the VM)"
}

# bare NS CMD...: run in a namespace with no XTABLES_LIBDIR, so iptables searches only its
# built-in directory, where the package installs the plugin.
bare() {
	local ns=$1
	shift
	env -u XTABLES_LIBDIR ip netns exec "$ns" "$@"
}

# The installed plugin, found by each iptables flavour through its built-in directory only.
plugin_without_libdir() {
	installed rsynproxy || return 1
	local ipt ns=pkg before want="-A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY $OPTS"
	for ipt in iptables-nft iptables-legacy ip6tables-nft ip6tables-legacy; do
		netns $ns
		bare $ns $ipt -A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY $OPTS ||
			fail "$ipt refused the rule" || return 1
		expect_eq "$ipt -S" "$(bare $ns $ipt -S INPUT | tail -n 1)" "$want" || return 1
		before=$(bare $ns $ipt-save | grep -v '^#')
		bare $ns $ipt -F
		printf '%s\n' "$before" | bare $ns $ipt-restore || fail "$ipt-restore failed" || return 1
		expect_eq "$ipt-save after restore" "$(bare $ns $ipt-save | grep -v '^#')" "$before" || return 1
		ip netns del $ns
	done
}

installed_tool() {
	installed rsynproxy || return 1
	expect_eq "rsynproxy --version" "$(/usr/sbin/rsynproxy --version)" "rsynproxy $VERSION" || return 1
	netns pkgt
	bare pkgt iptables -A INPUT -p tcp -j RSYNPROXY $OPTS || return 1
	local out
	out=$(/usr/sbin/rsynproxy stats --netns pkgt --json) || fail "stats: $out" || return 1
	grep -q '"syn_received"' <<<"$out" || fail "stats --json: $out"
	ip netns del pkgt
}

# Swap the module tree's rsynproxy.ko for the one `dkms install` put in updates/dkms, as on a
# machine where only the package provides it.
dkms_module_loads() {
	[ -f "$DKMS_KO" ] || fail "no DKMS-installed module at $DKMS_KO" || return 1
	ip -all netns delete
	local i
	for i in $(seq 50); do
		loaded rsynproxy || break
		rmmod rsynproxy 2>/dev/null || sleep 0.2
	done
	loaded rsynproxy && fail "rsynproxy stays loaded: $(grep rsynproxy /proc/modules)" && return 1
	local tree=/tmp/modroot/lib/modules/$KVER
	rm -f "$tree/extra/rsynproxy.ko"
	mkdir -p "$tree/updates"
	cp -r "$(dirname "$DKMS_KO")" "$tree/updates/"
	depmod -b /tmp/modroot "$KVER" || return 1
	expect_eq "modinfo -n rsynproxy" "$(modinfo -b /tmp/modroot -k "$KVER" -n rsynproxy)" "$tree/updates/dkms/rsynproxy.ko" || return 1
	# Autoload through the rule, as in use.
	netns pkgd
	inns pkgd iptables -A INPUT -p tcp -j RSYNPROXY $OPTS || return 1
	loaded rsynproxy || fail "the rule did not load the module" || return 1
	expect_eq "/sys/module/rsynproxy/version" "$(cat /sys/module/rsynproxy/version)" "$VERSION" || return 1
	ip netns del pkgd
	# The module's KUnit suite ran at load: the host parses it with the others.
	cp /sys/kernel/debug/kunit/rsynproxy/results "$RSYNPROXY_OUT/kunit-dkms.ktap"
}

dkms_module_proxies() {
	loaded rsynproxy || fail "the DKMS module is not loaded" || return 1
	topo_up || return 1
	proxy_rules 4 forward RSYNPROXY $OPTS || return 1
	local dst before after
	dst=$(addr 4 s)
	ip netns exec s python3 "$TOOLS/xfer.py" server "$dst" 8080 --count 1 >/tmp/pkg.srv 2>&1 &
	local srv=$!
	wait_for grep -q listening /tmp/pkg.srv || { kill $srv; fail "server did not start"; return 1; }
	before=$(stat_sum r rsynproxy)
	inns c python3 "$TOOLS/xfer.py" client "$dst" 8080 50000 50000 --seed 3 || { kill $srv; fail "transfer failed"; return 1; }
	after=$(stat_sum r rsynproxy)
	wait $srv
	expect_eq "counter deltas" "$(stat_delta "$before" "$after")" "1 0 1 0 0" || return 1
	ip -all netns delete
}

t "deb: iptables/ip6tables (nft, legacy) find the installed plugin without XTABLES_LIBDIR; save/restore" plugin_without_libdir
t "deb: the installed rsynproxy tool runs and reads the counters" installed_tool
t "dkms: the module DKMS built from the minimal headers loads by autoload (updates/dkms, version $VERSION)" dkms_module_loads
t "dkms: the DKMS-built module proxies a connection byte-exact, counters 1 0 1 0 0" dkms_module_proxies
