#!/bin/bash
# `make demo`, run inside the test VM: client -- proxy -- backend namespaces; a spoofed SYN
# flood against the backend, first without protection, then with RSYNPROXY on the proxy
# (the SYNPROXY man page's recipe); legitimate clients' success and time for both.
. "$(dirname "$0")/guest/topo.sh"
set -e
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { echo "# [$1] ${*:2}"; inns "$@"; }

step "namespaces: c (10.0.1.99) -- r proxy (10.0.1.1 | 10.0.2.1) -- s backend (10.0.2.99)"
topo_up
# A backend that cannot defend itself: no syncookies, a small SYN queue.
run s sysctl -w net.ipv4.tcp_syncookies=0 net.ipv4.tcp_max_syn_backlog=64
grep -q '^rsynproxy ' /proc/modules && echo "rsynproxy: loaded" || echo "rsynproxy: not loaded yet"

# round PORT LABEL: flood the backend's PORT with 80000 spoofed SYNs while 10 clients each
# try to move 100 kB through; print a result row.
round() {
	local port=$1 label=$2 ok=0 i t0 t1
	ip netns exec s python3 "$TOOLS/xfer.py" server 10.0.2.99 "$port" --count 10 >/tmp/demo.srv 2>&1 &
	local srv=$!
	wait_for grep -q listening /tmp/demo.srv
	ip netns exec c python3 "$TOOLS/rawtcp.py" flood --src-net 10.0.3.0/24 --dst 10.0.2.99 --dport "$port" \
		--count 80000 >/tmp/demo.flood 2>&1 &
	local fl=$!
	sleep 2
	t0=$(date +%s.%N)
	for i in $(seq 10); do
		inns c python3 "$TOOLS/xfer.py" client 10.0.2.99 "$port" 100000 1000 --seed "$i" --timeout 5 \
			>/dev/null 2>&1 && ok=$((ok + 1))
	done
	t1=$(date +%s.%N)
	wait $fl || true
	kill $srv 2>/dev/null || true
	wait $srv 2>/dev/null || true
	printf '%-34s %2d/10 connected   %6.1f s for all ten   flood: %s\n' "$label" "$ok" \
		"$(echo "$t1 - $t0" | bc)" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["sent"], "SYNs at", int(d["pps"]), "pps")' /tmp/demo.flood)"
}

step "round 1: no protection"
R1=$(round 8001 "without RSYNPROXY")
echo "$R1"

step "the recipe on the proxy"
run r sysctl -w net.netfilter.nf_conntrack_tcp_loose=0
run r iptables -t raw -A PREROUTING -i veth0 -p tcp -m tcp --syn -j CT --notrack
run r iptables -A FORWARD -i veth0 -p tcp -m state --state INVALID,UNTRACKED \
	-j RSYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460
run r iptables -A FORWARD -i veth0 -m state --state INVALID -j DROP
grep '^rsynproxy ' /proc/modules | cut -d' ' -f1,3 | sed 's/^/module autoloaded: /'

step "round 2: RSYNPROXY"
R2=$(round 8002 "with RSYNPROXY")
echo "$R2"

step "summary"
echo "$R1"
echo "$R2"

step "/proc/net/stat/rsynproxy in the proxy namespace (hex, one line per CPU)"
run r cat /proc/net/stat/rsynproxy
echo "totals: syn_received cookie_invalid cookie_valid cookie_retrans conn_reopened = $(stat_sum r rsynproxy)"
echo "conntrack entries in the proxy: $(inns r cat /proc/net/nf_conntrack | wc -l) (the flood made none)"
