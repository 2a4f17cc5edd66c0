#!/bin/bash
# Inside the guest of make check-distro (tests/distro/run through scripts/distro-vm): Debian's
# stock kernel, the distribution chroot as root with our packages installed by apt (the module
# built by DKMS into /lib/modules/KREL/updates/dkms, the plugin in the xtables directory).
# For each iptables backend (nf_tables, then legacy): the seed recipe autoloads the module,
# then the data-path tests of make check (tests/guest/20-datapath.sh: IPv4 and IPv6, FORWARD
# and INPUT, byte-exact transfers, counters, wire captures and SYN-ACKs compared with the
# kernel's own SYNPROXY), then the module unloads. Each part prints "# part NAME" and TAP
# lines; tests/distro/run counts them against tests/distro/plan.
here=$(cd "$(dirname "$0")" && pwd)
guest=$here/../guest
. "$guest/topo.sh" # lib.sh, stat_sum, refcnt_is
KREL=$(uname -r)

# PATH directories in which iptables and friends are one backend's (the root is read-only:
# no update-alternatives). xtables-*-multi picks the command by its argv[0].
for b in nft legacy; do
	mkdir -p "/tmp/ipt-$b"
	for c in iptables ip6tables iptables-save ip6tables-save iptables-restore ip6tables-restore; do
		ln -sf "/usr/sbin/xtables-$b-multi" "/tmp/ipt-$b/$c"
	done
done

backend_is() { # WANT: iptables -V names the backend
	local v
	v=$(iptables -V)
	[[ $v == *"($1)"* ]] || fail "iptables -V: $v (want $1)"
	v=$(ip6tables -V)
	[[ $v == *"($1)"* ]] || fail "ip6tables -V: $v (want $1)"
}

not_loaded() {
	! loaded rsynproxy || fail "rsynproxy is loaded already: $(grep '^rsynproxy ' /proc/modules)"
}

# The README's recipe, in a namespace of its own, both families; the first rule autoloads.
seed_recipe() {
	netns seed
	local ipt
	for ipt in iptables ip6tables; do
		inns seed $ipt -t raw -A PREROUTING -p tcp -m tcp --syn -j CT --notrack
		inns seed $ipt -A INPUT -p tcp -m state --state INVALID,UNTRACKED \
			-j RSYNPROXY --sack-perm --timestamp --wscale 9 --mss 1460
		inns seed $ipt -A INPUT -m state --state INVALID -j DROP
	done
	inns seed sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
	loaded rsynproxy || fail "the rule did not load rsynproxy"
	local f
	f=$(modinfo -n rsynproxy)
	[[ $f == "/lib/modules/$KREL/updates/dkms/rsynproxy.ko"* ]] || fail "modprobe's rsynproxy is $f, not DKMS's"
	[ "$(cat /sys/module/rsynproxy/taint)" = OE ] ||
		fail "module taint $(cat /sys/module/rsynproxy/taint), want OE (out of tree, key unknown to the kernel)"
	for ipt in iptables ip6tables; do
		inns seed $ipt -S INPUT | grep -qx -- '-A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY --sack-perm --timestamp --wscale 9 --mss 1460' ||
			fail "$ipt -S INPUT does not give the rule back: $(inns seed $ipt -S INPUT)"
	done
	inns seed test -r /proc/net/stat/rsynproxy
	stat_sum seed rsynproxy >/dev/null
	echo "modinfo -n: $f; vermagic: $(modinfo -F vermagic rsynproxy); signer: $(modinfo -F signer rsynproxy)"
}

# Every namespace gone, the module's references drop to 0 and it unloads.
unload() {
	local n
	for n in seed c r s; do ip netns del $n 2>/dev/null || true; done
	wait_for refcnt_is rsynproxy 0 || fail "rsynproxy refcnt $(refcnt rsynproxy) after the namespaces went"
	rmmod rsynproxy
	not_loaded
}

for b in nft legacy; do
	name=nf_tables
	[ $b = legacy ] && name=legacy
	(
		export PATH=/tmp/ipt-$b:$PATH
		echo "# part recipe-$b"
		t "iptables-$b: iptables and ip6tables are the $name backend" backend_is $name
		t "iptables-$b: rsynproxy is not loaded before the first rule" not_loaded
		t "iptables-$b: the seed recipe with -j RSYNPROXY (IPv4 and IPv6) autoloads the DKMS-built module from /lib/modules/$KREL/updates/dkms; rules read back; /proc/net/stat/rsynproxy" seed_recipe
		echo "# part datapath-$b"
		bash "$guest/20-datapath.sh" || echo "not ok - iptables-$b: 20-datapath.sh ran to the end (exit status $?)"
		# The captures, counters and wire summaries, for a failure's post-mortem (--out).
		cp -r /tmp/dp "$RSYNPROXY_OUT/dp-$b" 2>/dev/null || true
		echo "# part unload-$b"
		t "iptables-$b: with the namespaces gone the module's refcount is 0 and it unloads" unload
	)
done

echo "# part guest-health"
HEALTH_ALLOWED_TAINT=$(((1 << 12) | (1 << 13)))
HEALTH_ALLOWED_NAMES="O and E"
. "$guest/health.sh"
t "guest: the kernel is not tainted beyond O and E (out-of-tree module, signed with a key the kernel does not know)" health_taint
