#!/bin/bash
# The rsynproxy tool: `probe` against backends whose TCP settings differ must print exactly
# the options a capture of their SYN-ACK shows; `stats` must agree with the proc file.
. "$(dirname "$0")/topo.sh"

RSP=$RSYNPROXY_TOP/userspace/target/release/rsynproxy
topo_up || { echo "not ok - topology"; exit 1; }

# probe_vs_wire FAMILY SYSCTLS MTU: backend with those settings; compare probe and tcpdump.
probe_vs_wire() {
	local f=$1 dst cap=/tmp/probe.pcap out wire got
	dst=$(addr "$f" s)
	inns s sysctl -qw net.ipv4.tcp_timestamps=1 net.ipv4.tcp_sack=1 net.ipv4.tcp_window_scaling=1
	[ -n "$2" ] && inns s sysctl -qw $2
	inns s ip link set veth0 mtu "${3:-1500}"
	inns r ip link set veth1 mtu "${3:-1500}"
	ip netns exec s python3 "$TOOLS/xfer.py" listen "$dst" 7000 >/tmp/probe.srv 2>&1 &
	local srv=$!
	wait_for grep -q listening /tmp/probe.srv
	rm -f $cap
	# One SYN-ACK from the backend's port is all the capture waits for.
	local synack='tcp[13] & 18 == 18'
	[ "$f" = 6 ] && synack='ip6[53] & 18 == 18'
	ip netns exec c timeout 20 tcpdump -i veth0 -nn -U -c 1 -w $cap "src port 7000 and $synack" >/dev/null 2>&1 &
	local d=$!
	wait_for test -s $cap
	sleep 1
	local target=$dst:7000
	[ "$f" = 6 ] && target="[$dst]:7000"
	out=$(inns c "$RSP" probe "$target" --iface veth0 --port 80 --chain FORWARD) || { kill $srv $d; fail "probe failed: $out"; return 1; }
	wait $d
	kill $srv
	wait $srv 2>/dev/null
	# The SYN-ACK's options as tcpdump prints them, in the tool's terms.
	wire=$(tcpdump -r $cap -nn 2>/dev/null | grep -m1 'Flags \[S\.' | sed -nE 's/.*options \[([^]]*)\].*/\1/p')
	local mss=none ws=none sack=no ts=no
	[[ $wire =~ mss\ ([0-9]+) ]] && mss=${BASH_REMATCH[1]}
	[[ $wire =~ wscale\ ([0-9]+) ]] && ws=${BASH_REMATCH[1]}
	[[ $wire == *sackOK* ]] && sack=yes
	[[ $wire == *TS\ val* ]] && ts=yes
	got=$(printf '%s\n' "$out" | sed -nE 's/^  (mss|wscale|sack-perm|timestamps) +(.*)/\1=\2/p' | tr '\n' ' ')
	expect_eq "probe vs wire [$wire]" "$got" "mss=$mss wscale=$ws sack-perm=$sack timestamps=$ts " || return 1
	# The rule set carries the same values, and iptables accepts it.
	local args
	args=$(printf '%s\n' "$out" | sed -n '/^RSYNPROXY arguments:/{n;p}' | sed 's/^ *//')
	printf '%s\n' "$out" | grep -qF -- "-j RSYNPROXY $args" || fail "rule set lacks '$args'" || return 1
	netns ptest
	local rule
	while read -r rule; do
		[ -n "$rule" ] || continue
		inns ptest $rule >/dev/null || fail "printed rule refused: $rule" || return 1
	done < <(printf '%s\n' "$out" | sed -n '/^rule set:/,$p' | tail -n +2 | sed 's/^ *//; s/-i veth0/-i lo/')
	ip netns del ptest
}

t "probe IPv4 default backend: options equal the SYN-ACK on the wire, rules accepted" probe_vs_wire 4 "" ""
t "probe IPv4 backend without timestamps" probe_vs_wire 4 "net.ipv4.tcp_timestamps=0" ""
t "probe IPv4 backend without SACK" probe_vs_wire 4 "net.ipv4.tcp_sack=0" ""
t "probe IPv4 backend without window scaling" probe_vs_wire 4 "net.ipv4.tcp_window_scaling=0" ""
t "probe IPv4 backend behind a 1280-byte MTU" probe_vs_wire 4 "" 1280
t "probe IPv6 default backend" probe_vs_wire 6 "" ""
t "probe IPv6 backend behind a 1280-byte MTU, no timestamps" probe_vs_wire 6 "net.ipv4.tcp_timestamps=0" 1280

probe_errors() {
	local out
	out=$(inns c "$RSP" probe 10.0.2.99:7001 --timeout 2 2>&1) && fail "closed port: success" && return 1
	[[ $out == *"cannot connect to 10.0.2.99:7001"* ]] || fail "closed port: $out" || return 1
	out=$(inns c "$RSP" probe not-an-address 2>&1) && fail "bad address: success" && return 1
	[[ $out == *"bad backend address"* ]] || fail "bad address: $out" || return 1
	out=$(inns c "$RSP" probe --help) && [[ $out == *"--chain"* ]] || fail "probe --help: $out"
}
t "probe: clear errors for a closed port and a bad address; --help" probe_errors

stats_agree() {
	proxy_rules 4 forward RSYNPROXY --mss 1460 || return 1
	ip netns exec s python3 "$TOOLS/xfer.py" server 10.0.2.99 7002 --count 1 >/tmp/st.srv 2>&1 &
	wait_for grep -q listening /tmp/st.srv
	inns c python3 "$TOOLS/xfer.py" client 10.0.2.99 7002 10 10 >/dev/null || return 1
	local want got json
	want=($(stat_sum r rsynproxy))
	got=$("$RSP" stats --netns r | sed -n '/^rsynproxy:/,/^[a-z]/p' | awk '$1 ~ /_/ { printf "%s ", $2 }')
	expect_eq "stats totals" "$got" "${want[*]} " || return 1
	json=$("$RSP" stats --netns r --json | grep '"file":"rsynproxy"')
	[[ $json == *"\"syn_received\":${want[0]},"* ]] || fail "json: $json" || return 1
	"$RSP" stats --netns r --interval 0.2 --count 2 | grep -q '/s$' || fail "no rates with --interval" || return 1
	# With the in-tree core loaded its counters are shown too.
	modprobe ipt_SYNPROXY
	"$RSP" stats --netns r | grep -q '^synproxy:$' || fail "no synproxy section with nf_synproxy_core loaded" || return 1
	"$RSP" stats --netns nonexistent 2>&1 | grep -q 'network namespace "nonexistent"' || fail "no clear error for a bad netns"
}
t "stats: totals and JSON equal the proc file, rates with --interval, synproxy shown too" stats_agree
