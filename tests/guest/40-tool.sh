#!/bin/bash
# The rsynproxy tool: `probe` against backends whose TCP settings differ must print exactly
# the options a capture of their SYN-ACK shows; `stats` must agree with the proc file.
. "$(dirname "$0")/topo.sh"

RSP=$RSYNPROXY_TOP/userspace/target/release/rsynproxy

# probe_vs_wire FAMILY SYSCTLS MTU: backend with those settings; compare probe and tcpdump.
probe_vs_wire() {
	local f=$1 dst cap=/tmp/probe.pcap out wire got
	dst=$(addr "$f" s)
	inns s sysctl -qw net.ipv4.tcp_timestamps=1 net.ipv4.tcp_sack=1 net.ipv4.tcp_window_scaling=1
	if [ -n "$2" ]; then inns s sysctl -qw $2; fi
	inns s ip link set veth0 mtu "${3:-1500}"
	inns r ip link set veth1 mtu "${3:-1500}"
	ip netns exec s python3 "$TOOLS/xfer.py" listen "$dst" 7000 >/tmp/probe.srv 2>&1 &
	local srv=$!
	bg_track $srv
	wait_for grep -q listening /tmp/probe.srv || fail "server did not start: $(cat /tmp/probe.srv)"
	rm -f $cap
	# One SYN-ACK from the backend's port is all the capture waits for.
	local synack='tcp[13] & 18 == 18'
	if [ "$f" = 6 ]; then synack='ip6[53] & 18 == 18'; fi
	ip netns exec c timeout 20 tcpdump -i veth0 -nn -U -c 1 -w $cap "src port 7000 and $synack" >/dev/null 2>&1 &
	local d=$!
	bg_track $d
	wait_for test -s $cap || fail "tcpdump did not start"
	sleep 1
	local target=$dst:7000
	if [ "$f" = 6 ]; then target="[$dst]:7000"; fi
	out=$(inns c "$RSP" probe "$target" --iface veth0 --port 80 --chain FORWARD) || fail "probe failed: $out"
	wait $d || fail "tcpdump saw no SYN-ACK from the backend"
	stop $srv
	# The SYN-ACK's options as tcpdump prints them, in the tool's terms.
	wire=$(tcpdump -r $cap -nn 2>/dev/null | grep 'Flags \[S\.' | sed -nE '1s/.*options \[([^]]*)\].*/\1/p')
	[ -n "$wire" ] || fail "no SYN-ACK with options in the capture"
	local mss=none ws=none sack=no ts=no
	if [[ $wire =~ mss\ ([0-9]+) ]]; then mss=${BASH_REMATCH[1]}; fi
	if [[ $wire =~ wscale\ ([0-9]+) ]]; then ws=${BASH_REMATCH[1]}; fi
	if [[ $wire == *sackOK* ]]; then sack=yes; fi
	if [[ $wire == *TS\ val* ]]; then ts=yes; fi
	got=$(printf '%s\n' "$out" | sed -nE 's/^  (mss|wscale|sack-perm|timestamps) +(.*)/\1=\2/p' | tr '\n' ' ')
	expect_eq "probe vs wire [$wire]" "$got" "mss=$mss wscale=$ws sack-perm=$sack timestamps=$ts "
	# The rule set carries the same values, and iptables accepts it.
	local args
	args=$(printf '%s\n' "$out" | sed -n '/^RSYNPROXY arguments:/{n;p}' | sed 's/^ *//')
	[ -n "$args" ] || fail "no RSYNPROXY arguments printed: $out"
	printf '%s\n' "$out" | grep -qF -- "-j RSYNPROXY $args" || fail "rule set lacks '$args'"
	netns ptest
	local rule rules n=0
	rules=$(printf '%s\n' "$out" | sed -n '/^rule set:/,$p' | tail -n +2 | sed 's/^ *//; s/-i veth0/-i lo/')
	while read -r rule; do
		[ -n "$rule" ] || continue
		inns ptest $rule >/dev/null || fail "printed rule refused: $rule"
		n=$((n + 1))
	done <<<"$rules"
	[ $n -ge 3 ] || fail "the rule set has $n rules: $out"
	ip netns del ptest
}

t "topology: client, proxy and backend namespaces" topo_up
t "probe IPv4 default backend: options equal the SYN-ACK on the wire, rules accepted" probe_vs_wire 4 "" ""
t "probe IPv4 backend without timestamps" probe_vs_wire 4 "net.ipv4.tcp_timestamps=0" ""
t "probe IPv4 backend without SACK" probe_vs_wire 4 "net.ipv4.tcp_sack=0" ""
t "probe IPv4 backend without window scaling" probe_vs_wire 4 "net.ipv4.tcp_window_scaling=0" ""
t "probe IPv4 backend behind a 1280-byte MTU" probe_vs_wire 4 "" 1280
t "probe IPv6 default backend" probe_vs_wire 6 "" ""
t "probe IPv6 backend behind a 1280-byte MTU, no timestamps" probe_vs_wire 6 "net.ipv4.tcp_timestamps=0" 1280

probe_errors() {
	local out
	proxy_flush
	if out=$(inns c "$RSP" probe 10.0.2.99:7001 --timeout 2 2>&1); then fail "closed port: success: $out"; fi
	[[ $out == *"cannot connect to 10.0.2.99:7001"* ]] || fail "closed port: $out"
	if out=$(inns c "$RSP" probe not-an-address 2>&1); then fail "bad address: success: $out"; fi
	[[ $out == *"bad backend address"* ]] || fail "bad address: $out"
	out=$(inns c "$RSP" probe --help) || fail "probe --help failed: $out"
	[[ $out == *"--chain"* ]] || fail "probe --help: $out"
}
t "probe: clear errors for a closed port and a bad address; --help" probe_errors

stats_agree() {
	proxy_rules 4 forward RSYNPROXY --mss 1460
	ip netns exec s python3 "$TOOLS/xfer.py" server 10.0.2.99 7002 --count 1 >/tmp/st.srv 2>&1 &
	local srv=$!
	bg_track $srv
	wait_for grep -q listening /tmp/st.srv || fail "server did not start: $(cat /tmp/st.srv)"
	inns c python3 "$TOOLS/xfer.py" client 10.0.2.99 7002 10 10 >/dev/null
	wait $srv
	local -a want
	local got json name
	got=$(stat_sum r rsynproxy)
	want=($got)
	[ "${want[0]}" -ge 1 ] && [ "${want[2]}" -ge 1 ] || fail "the connection was not proxied: ${want[*]}"
	got=$("$RSP" stats --netns r)
	got=$(sed -n '/^rsynproxy:/,/^[a-z]/p' <<<"$got" | awk '$1 ~ /_/ && NF > 1 { printf "%s ", $2 }')
	expect_eq "stats totals" "$got" "${want[*]} "
	json=$("$RSP" stats --netns r --json)
	# Every counter, by name, equals the proc file's sum.
	local i=0
	for name in syn_received cookie_invalid cookie_valid cookie_retrans conn_reopened; do
		got=$(python3 -c '
import json, sys
objs = [json.loads(line) for line in sys.stdin.read().splitlines() if line.strip()]
print(" ".join(str(o["totals"][sys.argv[1]]) for o in objs if o["file"] == "rsynproxy"))' "$name" <<<"$json")
		expect_eq "JSON $name" "$got" "${want[i]}"
		i=$((i + 1))
	done
	got=$("$RSP" stats --netns r --interval 0.2 --count 2)
	grep -q '/s$' <<<"$got" || fail "no rates with --interval: $got"
	# With the in-tree core loaded its counters are shown too.
	modprobe ipt_SYNPROXY
	got=$("$RSP" stats --netns r)
	grep -q '^synproxy:$' <<<"$got" || fail "no synproxy section with nf_synproxy_core loaded: $got"
	if got=$("$RSP" stats --netns nonexistent 2>&1); then fail "a bad netns succeeded: $got"; fi
	grep -q 'network namespace "nonexistent"' <<<"$got" || fail "no clear error for a bad netns: $got"
}
t "stats: totals and JSON equal the proc file, rates with --interval, synproxy shown too" stats_agree

# prom_rows: the Prometheus text on stdin through prometheus_client's own parser, one line
# per (netns, target): "NETNS TARGET syn_received cookie_invalid cookie_valid retrans reopened".
prom_rows() {
	/usr/bin/python3 -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
names = ["syn_received", "cookie_invalid", "cookie_valid", "cookie_retrans", "conn_reopened"]
rows = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    assert fam.type == "counter", (fam.name, fam.type)
    if fam.name.startswith("rsynproxy_mismatch_"):
        continue  # RSYNPROXY only; 25-mismatch.sh checks them
    i = names.index(fam.name[len("rsynproxy_"):])
    for smp in fam.samples:
        if smp.name.endswith("_created"):
            continue
        assert smp.name == fam.name + "_total", smp.name
        rows.setdefault((smp.labels["netns"] or "-", smp.labels["target"]), [None] * 5)[i] = int(smp.value)
for (ns, tg), v in sorted(rows.items()):
    print(ns, tg, *v)'
}

# After stats_agree: r has RSYNPROXY counts and nf_synproxy_core is loaded.
stats_prometheus() {
	local out rows ns
	out=$("$RSP" stats --prometheus --all-netns) || fail "stats --prometheus --all-netns: $out"
	rows=$(prom_rows <<<"$out") || fail "prometheus_client's parser refused the output: $out"
	# This namespace (no /run/netns name: "-") and every named one, earlier parts' included.
	local names
	names=$(ls /run/netns)
	for ns in - $names; do
		grep -q "^$ns RSYNPROXY " <<<"$rows" && grep -q "^$ns SYNPROXY " <<<"$rows" ||
			fail "namespace $ns missing: $rows"
	done
	expect_eq "samples" "$(wc -l <<<"$rows")" "$((2 * ($(wc -w <<<"$names") + 1)))"
	expect_eq "r RSYNPROXY" "$(grep '^r RSYNPROXY ' <<<"$rows")" "r RSYNPROXY $(stat_sum r rsynproxy)"
	expect_eq "r SYNPROXY" "$(grep '^r SYNPROXY ' <<<"$rows")" "r SYNPROXY $(stat_sum r synproxy)"
	[ "$(grep '^r RSYNPROXY ' <<<"$rows" | cut -d' ' -f3)" -ge 1 ] || fail "no SYN counted in r: $rows"
	out=$("$RSP" stats --prometheus --netns r) || fail "stats --prometheus --netns r: $out"
	expect_eq "--netns r" "$(prom_rows <<<"$out" | cut -d' ' -f1-2 | tr '\n' ' ')" "r RSYNPROXY r SYNPROXY "
}
t "stats --prometheus: prometheus_client parses it, every namespace, values equal the proc files" stats_prometheus

# --- doctor ------------------------------------------------------------------------------
DRULE=(--sack-perm --timestamp --wscale 7 --mss 1460)

# doctor_find: doctor's findings for r as "CODE<TAB>FIX" lines; its exit status in $DOCTOR_RC
# (call it without a command substitution, so that the status survives: output in $FOUND).
doctor_find() {
	local out
	DOCTOR_RC=0
	out=$("$RSP" doctor --netns r --json "$@") || DOCTOR_RC=$?
	FOUND=$(python3 -c '
import json, sys
for f in json.loads(sys.stdin.read())["findings"]:
    print(f["code"] + "\t" + f["fix"])' <<<"$out") || fail "doctor printed no JSON (status $DOCTOR_RC): $out"
}

# doctor_recipe: the correct recipe in r, both families, FORWARD and INPUT, no legacy rules.
doctor_recipe() {
	local ipt
	for ipt in iptables-legacy ip6tables-legacy; do
		inns r $ipt -t raw -F 2>/dev/null || true
		inns r $ipt -F 2>/dev/null || true
	done
	inns r sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
	proxy_rules_all RSYNPROXY "${DRULE[@]}"
}

doctor_clean() {
	doctor_recipe
	doctor_find
	expect_eq "findings" "$FOUND" ""
	expect_eq "exit status" "$DOCTOR_RC" 0
	local text
	text=$("$RSP" doctor --netns r) || fail "text output, status $?: $text"
	grep -qx "no problem found" <<<"$text" || fail "no 'no problem found' line: $text"
}
t "doctor: the correct recipe (IPv4+IPv6, INPUT+FORWARD) reports nothing, exit status 0" doctor_clean

# planted CODES STATUS COMMAND...: with the correct recipe in r, COMMAND plants one mistake;
# doctor must report exactly CODES (space-separated, in order) with exit status STATUS (4 for
# errors, 3 for warnings only), and running the fixes it prints, in r, must leave it
# reporting nothing.
planted() {
	local codes=$1 status=$2 fix
	shift 2
	doctor_recipe
	"$@" || fail "planting failed: $*"
	doctor_find
	expect_eq "findings" "$(cut -f1 <<<"$FOUND" | tr '\n' ' ')" "$codes "
	expect_eq "exit status" "$DOCTOR_RC" "$status"
	while IFS=$'\t' read -r _ fix; do
		inns r sh -c "$fix" || fail "the printed fix failed: $fix"
	done <<<"$FOUND"
	doctor_find
	expect_eq "findings after the fixes" "$FOUND" ""
	expect_eq "exit status after the fixes" "$DOCTOR_RC" 0
}

legacy_without_drop() {
	inns r iptables -t raw -F
	inns r iptables -F
	recipe RSYNPROXY "${DRULE[@]}" | grep -v 'FORWARD.*DROP' | inns r iptables-legacy-restore
}

t "doctor: nf_conntrack_tcp_loose=1 is named, its fix clears it" \
	planted tcp-loose 4 inns r sysctl -qw net.netfilter.nf_conntrack_tcp_loose=1
t "doctor: no IPv6 notrack rule (both IPv6 proxy rules bypassed), its fix clears it" \
	planted "no-notrack no-notrack" 4 inns r ip6tables -t raw -F
t "doctor: a notrack rule without --syn, its fix clears it" \
	planted "notrack-not-syn notrack-not-syn" 4 inns r iptables -t raw -R PREROUTING 1 -i veth0 -p tcp -j CT --notrack
t "doctor: a notrack rule on another interface, its fix clears it" \
	planted "no-notrack no-notrack" 4 inns r iptables -t raw -R PREROUTING 1 -i veth1 -p tcp --syn -j CT --notrack
t "doctor: state UNTRACKED only, its fix clears it" \
	planted state-match 4 inns r iptables -R INPUT 1 -i veth0 -p tcp -m state --state UNTRACKED -j RSYNPROXY "${DRULE[@]}"
t "doctor: no INVALID drop after the IPv6 FORWARD rule, its fix clears it" \
	planted no-drop 4 inns r ip6tables -D FORWARD 2
t "doctor: the INVALID drop before the proxy rule, its fix clears it" \
	planted drop-before 4 inns r iptables -I INPUT 1 -i veth0 -m state --state INVALID -j DROP
t "doctor: an iptables-legacy rule set without the FORWARD drop, its fix clears it" \
	planted no-drop 4 legacy_without_drop
t "doctor: SYNPROXY on the same traffic (a warning, exit status 3), its fix clears it" \
	planted synproxy-too 3 inns r iptables -A FORWARD -i veth0 -p tcp -m state --state INVALID,UNTRACKED -j SYNPROXY "${DRULE[@]}"

# --probe: a backend whose window scale differs from the rule's.
doctor_probe() {
	doctor_recipe
	# Both IPv4 proxy rules take every port, so both are compared with the backend.
	local chain
	for chain in FORWARD INPUT; do
		inns r iptables -R $chain 1 -i veth0 -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY --sack-perm --timestamp --wscale 1 --mss 1460
	done
	ip netns exec s python3 "$TOOLS/xfer.py" listen 10.0.2.99 7005 >/tmp/doc.srv 2>&1 &
	bg_track $!
	wait_for grep -q listening /tmp/doc.srv || fail "server did not start: $(cat /tmp/doc.srv)"
	doctor_find --probe 10.0.2.99:7005
	expect_eq "findings" "$(cut -f1 <<<"$FOUND" | tr '\n' ' ')" "backend-options backend-options "
	expect_eq "exit status" "$DOCTOR_RC" 4
	# The fixes carry the backend's options as `probe` reads them, not the rule's scale 1.
	local args
	args=$(inns r "$RSP" probe 10.0.2.99:7005 | sed -n '/^RSYNPROXY arguments:/{n;p}' | sed 's/^ *//')
	[[ $args == *"--wscale 1 "* ]] && fail "the backend's window scale is 1 too: $args"
	[ "$(grep -cF -- "-j RSYNPROXY $args" <<<"$FOUND")" = 2 ] || fail "the fixes do not carry the backend's options ($args): $FOUND"
	while IFS=$'\t' read -r _ fix; do
		inns r sh -c "$fix" || fail "the printed fix failed: $fix"
	done <<<"$FOUND"
	doctor_find --probe 10.0.2.99:7005
	expect_eq "findings after the fix" "$FOUND" ""
}
t "doctor --probe: a backend with another window scale than the rule's, its fix clears it" doctor_probe
