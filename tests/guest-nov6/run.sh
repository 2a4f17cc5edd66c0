#!/bin/bash
# The module on a kernel booted with ipv6.disable=1 (tests/run-all boots it on its own:
# tests/vm-run --append ipv6.disable=1 -- bash tests/guest-nov6/run.sh). There is no
# net->ipv6.devconf_all then: the module must load (its KUnit suite too, in a test build)
# and proxy IPv4. Prints TAP lines, then the guest health checks of tests/guest/health.sh.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../guest/lib.sh"
TOOLS=$RSYNPROXY_TOP/tests/tools
PORT=8080

test_ipv6_off() {
	[ "$(cat /sys/module/ipv6/parameters/disable 2>/dev/null)" = 1 ] ||
		fail "ipv6.disable is not 1: $(cat /proc/cmdline)"
	[ ! -e /proc/sys/net/ipv6 ] || fail "/proc/sys/net/ipv6 exists: IPv6 is running"
}

test_load() {
	! loaded rsynproxy || fail "rsynproxy loaded before the test"
	modprobe rsynproxy
	loaded rsynproxy || fail "modprobe rsynproxy left no module"
	local r=/sys/kernel/debug/kunit/rsynproxy/results
	if [ -e $r ]; then
		# A test build: its suite ran at load, without IPv6 too.
		cp $r "$RSYNPROXY_OUT/kunit-nov6.ktap"
		grep -q '^ok 1 rsynproxy' $r || fail "KUnit suite: $(grep 'not ok' $r)"
	fi
}

# c (client) 10.0.1.99 -- 10.0.1.1 r (proxy) 10.0.2.1 -- 10.0.2.99 s (backend), IPv4 only.
test_proxy() {
	local n
	for n in c r s; do netns $n; done
	ip link add veth0 netns c type veth peer name veth0 netns r
	ip link add veth1 netns r type veth peer name veth0 netns s
	ip -n c addr add 10.0.1.99/24 dev veth0
	ip -n r addr add 10.0.1.1/24 dev veth0
	ip -n r addr add 10.0.2.1/24 dev veth1
	ip -n s addr add 10.0.2.99/24 dev veth0
	for n in c r s; do ip -n $n link set veth0 up; done
	ip -n r link set veth1 up
	ip -n c route add default via 10.0.1.1
	ip -n s route add default via 10.0.2.1
	inns r sysctl -qw net.ipv4.ip_forward=1 net.netfilter.nf_conntrack_tcp_loose=0
	inns r iptables -t raw -A PREROUTING -i veth0 -p tcp -m tcp --syn -j CT --notrack
	inns r iptables -A FORWARD -i veth0 -p tcp -m state --state INVALID,UNTRACKED \
		-j RSYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460
	inns r iptables -A FORWARD -i veth0 -m state --state INVALID -j DROP
	ip netns exec s python3 "$TOOLS/xfer.py" server 10.0.2.99 $PORT >/tmp/nov6.srv 2>&1 &
	local srv=$!
	# Stop the server if the test fails early; a clean end has already reaped it.
	trap 'kill $srv 2>/dev/null || true; wait $srv 2>/dev/null || true' EXIT
	local i
	for i in $(seq 100); do grep -q listening /tmp/nov6.srv && break; sleep 0.1; done
	grep -q listening /tmp/nov6.srv || fail "server: $(cat /tmp/nov6.srv)"
	inns c python3 "$TOOLS/xfer.py" client 10.0.2.99 $PORT 100000 300000 --seed 1
	wait $srv || fail "server: $(cat /tmp/nov6.srv)"
	# One connection: one SYN, one valid cookie (summed over the CPU lines).
	local line sum=(0 0 0 0 0) col
	while read -r line; do
		col=($line)
		for i in 0 1 2 3 4; do sum[i]=$((sum[i] + 16#${col[i + 1]})); done
	done < <(inns r cat /proc/net/stat/rsynproxy | tail -n +2)
	expect_eq "counters" "${sum[*]}" "1 0 1 0 0"
}

test_unload() {
	for n in c r s; do ip netns del $n; done
	local i
	for i in $(seq 100); do [ "$(cat /sys/module/rsynproxy/refcnt)" = 0 ] && break; sleep 0.1; done
	rmmod rsynproxy
}

t "nov6: the kernel runs without IPv6 (ipv6.disable=1)" test_ipv6_off
t "nov6: modprobe rsynproxy loads the module (and its KUnit suite passes in a test build)" test_load
t "nov6: the IPv4 recipe proxies a byte-exact transfer and counts it" test_proxy
t "nov6: rmmod rsynproxy after the namespaces are gone" test_unload
. "$here/../guest/health.sh"
health_report
dmesg >"$RSYNPROXY_OUT/dmesg.txt"
