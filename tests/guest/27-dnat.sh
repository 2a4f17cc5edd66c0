#!/bin/bash
# Port forwarding: r is a router whose public address (10.0.1.1, fd00:1::1) forwards port
# 8100 to the backend 10.0.2.99:8180 ([fd00:2::99]:8180), with the proxy in front, side by
# side with the in-tree C SYNPROXY.
#
# The client's SYN is untracked (raw notrack), so no DNAT applies to it: it is addressed to
# the router and the proxy rule sits in INPUT. The proxy's backend SYN leaves through
# OUTPUT, where a second DNAT rule sends it to the backend; the rest of the connection is
# forwarded by its conntrack entry (FORWARD with policy DROP accepts ESTABLISHED only).
# Tests: that recipe carries byte-exact transfers for both targets and both families, with
# the backend seeing the client's own address on its port 8180 and the same SYN-ACK and
# window update on the client's wire from both proxies; the classic mistake, a DNAT in
# PREROUTING only, breaks every connection for both targets, and `rsynproxy doctor` names
# it and prints the rule whose addition makes the transfer work.
. "$(dirname "$0")/topo.sh"

PUB=8100
BPORT=8180
RULE=(--sack-perm --timestamp --wscale 7 --mss 1460)
RSP=$RSYNPROXY_TOP/userspace/target/release/rsynproxy
W=/tmp/dnat

setup() {
	topo_up
	modprobe ipt_SYNPROXY
	modprobe ip6t_SYNPROXY
	modprobe rsynproxy
	rm -rf $W
	mkdir -p $W
	# The backend server for every test of the file, a thread per connection (stopped at the
	# end of the file: it outlives the tests).
	ip netns exec s python3 "$TOOLS/xfer.py" server :: $BPORT --parallel >$W/srv 2>&1 &
	echo $! >$W/srv.pid
	wait_for grep -q listening $W/srv || fail "server did not start: $(cat $W/srv)"
}

# to FAMILY: the DNAT destination.
to() { if [ "$1" = 6 ]; then echo "[$(addr 6 s)]:$BPORT"; else echo "$(addr 4 s):$BPORT"; fi; }

# unforward: r's raw, nat and filter tables empty for both families, FORWARD accepting.
unforward() {
	local ipt tb
	for ipt in iptables ip6tables; do
		for tb in raw nat filter; do inns r $ipt -t $tb -F; done
		inns r $ipt -P FORWARD ACCEPT
	done
}

# forward_rules FAMILY TARGET [prerouting-only]: the port-forwarding recipe in r (the
# administrator's guide shows the same rules), replacing r's raw, nat and filter tables.
forward_rules() {
	local fam=$1 tg=$2 ipt pub
	ipt=$(ipt_of "$fam")
	pub=$(addr "$fam" r)
	unforward
	inns r "$ipt" -t raw -A PREROUTING -i veth0 -d "$pub" -p tcp --dport $PUB --syn -j CT --notrack
	inns r "$ipt" -t nat -A PREROUTING -i veth0 -d "$pub" -p tcp --dport $PUB -j DNAT --to-destination "$(to "$fam")"
	if [ "${3:-}" != prerouting-only ]; then
		inns r "$ipt" -t nat -A OUTPUT -d "$pub" -p tcp --dport $PUB -j DNAT --to-destination "$(to "$fam")"
	fi
	inns r "$ipt" -A INPUT -i veth0 -d "$pub" -p tcp --dport $PUB -m state --state INVALID,UNTRACKED -j "$tg" "${RULE[@]}"
	inns r "$ipt" -A INPUT -i veth0 -m state --state INVALID -j DROP
	inns r "$ipt" -P FORWARD DROP
	inns r "$ipt" -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
}

# transfer FAMILY TARGET NAME SEED: one byte-exact transfer both ways to the public port,
# captures at the client and the backend in $W/NAME.*, the counter deltas in $W/NAME.counters.
transfer() {
	local fam=$1 tg=$2 pre=$W/$3 before after rc=0
	capture c veth0 "$pre.client.pcap" tcp port $PUB
	local d1=$CAP_PID
	capture s veth0 "$pre.backend.pcap" tcp port $BPORT
	local d2=$CAP_PID
	before=$(stat_sum r "$(stat_file "$tg")")
	inns c python3 "$TOOLS/xfer.py" client "$(addr "$fam" r)" $PUB 300000 200000 --seed "$4" --timeout 10 \
		>"$pre.xfer" 2>&1 || rc=$?
	after=$(stat_sum r "$(stat_file "$tg")")
	settle "$pre.client.pcap" "$pre.backend.pcap"
	stop $d1 $d2
	stat_delta "$before" "$after" >"$pre.counters"
	return $rc
}

# backend_syns PCAP: "SRC SPORT DST DPORT" of each SYN in a capture (tcpdump's own reading:
# its tcp[] filter offsets are IPv4-only, so the flags are taken from the text).
backend_syns() {
	tcpdump -nn -r "$1" 2>/dev/null | { grep -F 'Flags [S],' || true; } |
		sed -E 's/^.* IP6? ([^ ]+)\.([0-9]+) > ([^ ]+)\.([0-9]+): .*/\1 \2 \3 \4/' | sort -u
}

test_forward() { # FAMILY
	local fam=$1 tg n=0
	for tg in RSYNPROXY SYNPROXY; do
		n=$((n + 1))
		forward_rules "$fam" $tg
		transfer "$fam" $tg "$fam-$tg" $n || fail "$tg: transfer failed: $(cat "$W/$fam-$tg.xfer")"
		cat "$W/$fam-$tg.xfer"
		expect_eq "$tg counter deltas (syn_received cookie_invalid cookie_valid cookie_retrans conn_reopened)" \
			"$(cat "$W/$fam-$tg.counters")" "1 0 1 0 0"
		# The backend got the proxy's SYN on its own port, from the client's address.
		local syns
		syns=$(backend_syns "$W/$fam-$tg.backend.pcap")
		[ "$(wc -l <<<"$syns")" = 1 ] && [[ $syns == "$(addr "$fam" c) "*" $(addr "$fam" s) $BPORT" ]] ||
			fail "$tg: backend SYNs are not one from $(addr "$fam" c) to port $BPORT: '$syns'"
		wire conns --port $PUB "$W/$fam-$tg.client.pcap" >"$W/$fam-$tg.conns"
		sed "s/^/$tg: /" "$W/$fam-$tg.conns"
		grep -q "^conn 1 wupd: .* seq=synack+1 ack=syn+1 " "$W/$fam-$tg.conns" || fail "$tg: no window update to the client"
		grep -qx "conn 1 rst: none" "$W/$fam-$tg.conns" || fail "$tg: the client got a reset"
	done
	expect_eq "the client's wire from RSYNPROXY (got) and SYNPROXY (want): SYN-ACK, window update" \
		"$(cat "$W/$fam-RSYNPROXY.conns")" "$(cat "$W/$fam-SYNPROXY.conns")"
	# What the router's conntrack keeps: the original tuple to the public port, the reply
	# from the backend's.
	local ct
	ct=$(inns r conntrack -L -f "ipv$fam" -p tcp --orig-port-dst $PUB 2>/dev/null)
	grep -q "dport=$PUB .*src=$(addr "$fam" s) dst=$(addr "$fam" c) sport=$BPORT " <<<"$ct" ||
		fail "no DNAT'ed entry in r's conntrack table: $ct"
	inns r conntrack -F >/dev/null 2>&1
}

# A DNAT in PREROUTING only: the backend SYN is addressed to the router itself and never
# reaches the backend, whichever target; doctor names the mistake and its printed fix
# (the OUTPUT rule) makes the transfer work.
test_prerouting_only() { # FAMILY
	local fam=$1 tg n=10
	for tg in SYNPROXY RSYNPROXY; do
		n=$((n + 1))
		forward_rules "$fam" $tg prerouting-only
		if transfer "$fam" $tg "$fam-pre-$tg" $n; then
			fail "$tg: a transfer went through without the OUTPUT DNAT: $(cat "$W/$fam-pre-$tg.xfer")"
		fi
		echo "$tg without the OUTPUT DNAT: $(tail -n 1 "$W/$fam-pre-$tg.xfer")"
		[ -z "$(backend_syns "$W/$fam-pre-$tg.backend.pcap")" ] || fail "$tg: a SYN reached the backend"
	done
	# RSYNPROXY's rules are in place: what doctor says about them.
	local out rc=0 codes fix
	out=$("$RSP" doctor --netns r --json) || rc=$?
	# The codes on the first line, the first finding's fix on the second (one process).
	{
		read -r codes
		read -r fix
	} < <(python3 -c 'import json, sys
f = json.load(sys.stdin)["findings"]
print(" ".join(x["code"] for x in f))
print(f[0]["fix"] if f else "")' <<<"$out")
	expect_eq "doctor's findings" "$codes" "dnat-prerouting-only"
	expect_eq "doctor's exit status" "$rc" 4
	echo "doctor's fix: $fix"
	inns r sh -c "$fix" || fail "the printed fix failed: $fix"
	out=$("$RSP" doctor --netns r --json) || fail "doctor still finds something after the fix: $out"
	transfer "$fam" RSYNPROXY "$fam-fixed" 20 || fail "transfer after the fix failed: $(cat "$W/$fam-fixed.xfer")"
	cat "$W/$fam-fixed.xfer"
	inns r conntrack -F >/dev/null 2>&1
}

t "router topology, backend server on port $BPORT; the SYNPROXY modules and rsynproxy load" setup
t "IPv4 port forwarding 10.0.1.1:$PUB -> 10.0.2.99:$BPORT (DNAT in PREROUTING and OUTPUT, proxy rule in INPUT): RSYNPROXY and SYNPROXY byte-exact, the backend sees the client's address, same SYN-ACK and window update" test_forward 4
t "IPv6 port forwarding [fd00:1::1]:$PUB -> [fd00:2::99]:$BPORT: RSYNPROXY and SYNPROXY byte-exact, the backend sees the client's address, same SYN-ACK and window update" test_forward 6
t "IPv4 DNAT in PREROUTING only: no connection for either target; doctor names dnat-prerouting-only (exit 4) and its fix makes the transfer work" test_prerouting_only 4
t "IPv6 DNAT in PREROUTING only: no connection for either target; doctor names dnat-prerouting-only (exit 4) and its fix makes the transfer work" test_prerouting_only 6

kill "$(cat $W/srv.pid)" 2>/dev/null || true
unforward 2>/dev/null || true
