#!/bin/bash
# The proxy end to end, side by side with the in-tree C SYNPROXY, for IPv4 and IPv6, for
# "protect backend" (FORWARD) and "protect local" (INPUT), with several option sets.
#
# Per case, both targets carry two connections byte-exact both ways through seqadj, with
# the same counter deltas; captures at the client and at the backend must then show the
# same packets from both proxies: the SYN-ACK, the window update to the client, the SYN to
# the backend and the ACK that completes the backend handshake — flags, windows, options
# and sequence numbers, the per-connection numbers compared by their relation to earlier
# packets (tests/tools/wire.py conns). The TSecr of that last ACK is where they differ
# (a fixed C bug): RSYNPROXY echoes the backend's TSval, SYNPROXY echoes it plus tsoff.
# Then identical crafted SYNs sent to both targets must get byte-identical SYN-ACKs, the
# syncookie ISN included (tests/tools/wire.py synacks).
. "$(dirname "$0")/topo.sh"

PORT=8080
CPORT=8099

setup() {
	topo_up
	modprobe ipt_SYNPROXY
	modprobe ip6t_SYNPROXY
	# The crafted SYNs of the cookie test have no socket: keep the client kernel from
	# answering their SYN-ACKs with a RST.
	inns c iptables -A OUTPUT -p tcp --dport $CPORT --tcp-flags RST RST -j DROP
	inns c ip6tables -A OUTPUT -p tcp --dport $CPORT --tcp-flags RST RST -j DROP
	mkdir -p /tmp/dp
}

# Option sets: "name|rule options|client sysctls|client MTU|the SYN-ACK's options|timestamps
# negotiated (ts|none)|MSS of the backend SYN for IPv4 IPv6 (the client's MSS rounded down to
# the syncookie table: 536 1300 1440 1460 for IPv4, 1220 1420 1440 8940 for IPv6)"
SETS=(
	"full|--sack-perm --timestamp --wscale 7 --mss 1460|||mss 1460,sackOK,TS,nop,wscale 7|ts|1460 1440"
	"no-timestamp-rule|--mss 1460 --sack-perm --wscale 7|||mss 1460|none|1460 1440"
	"client-without-options|--sack-perm --timestamp --wscale 7 --mss 1460|net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=0 net.ipv4.tcp_window_scaling=0||mss 1460|none|1460 1440"
	"coarse-mss-ecn|--sack-perm --timestamp --wscale 7 --mss 1400 --ecn|net.ipv4.tcp_ecn=1|1440|mss 1400,sackOK,TS,nop,wscale 7|ts|1300 1220"
)

client_setup() { # sysctls mtu
	inns c sysctl -qw net.ipv4.tcp_timestamps=1 net.ipv4.tcp_sack=1 net.ipv4.tcp_window_scaling=1 net.ipv4.tcp_ecn=2
	if [ -n "$1" ]; then inns c sysctl -qw $1; fi
	inns c ip link set veth0 mtu "${2:-1500}"
}

# run_case FAMILY MODE TARGET SET: two transfers through TARGET; captures and the counter
# deltas in /tmp/dp/FAMILY-MODE-NAME-TARGET.*
run_case() {
	local fam=$1 mode=$2 tg=$3 name rule sysctls mtu
	IFS='|' read -r name rule sysctls mtu _ <<<"$4"
	local pre=/tmp/dp/$fam-$mode-$name-$tg dst srvns=s bif=veth0
	rm -f "$pre".*
	client_setup "$sysctls" "$mtu"
	proxy_rules "$fam" "$mode" "$tg" $rule
	if [ "$mode" = input ]; then
		dst=$(addr "$fam" r)
		srvns=r
		bif=lo
	else
		dst=$(addr "$fam" s)
	fi
	# Background processes: ip netns exec directly (a function would leave its child running
	# when killed) and no inherited stdout (the test's output is read to the end).
	ip netns exec "$srvns" python3 "$TOOLS/xfer.py" server "$dst" $PORT --count 2 >"$pre.srv" 2>&1 &
	local srv=$!
	bg_track $srv
	capture c veth0 "$pre.client.pcap" tcp port $PORT
	local d1=$CAP_PID
	capture "$srvns" $bif "$pre.backend.pcap" tcp port $PORT
	local d2=$CAP_PID
	wait_for grep -q listening "$pre.srv" || fail "$tg: server did not start: $(cat "$pre.srv")"
	local before after
	before=$(stat_sum r "$(stat_file "$tg")")
	inns c python3 "$TOOLS/xfer.py" client "$dst" $PORT 100000 300000 --seed 1 || fail "$tg: transfer 1 failed"
	inns c python3 "$TOOLS/xfer.py" client "$dst" $PORT 70001 1 --seed 2 || fail "$tg: transfer 2 failed"
	after=$(stat_sum r "$(stat_file "$tg")")
	wait $srv || fail "$tg: the server failed: $(cat "$pre.srv")"
	settle "$pre.client.pcap" "$pre.backend.pcap"
	stop $d1 $d2
	stat_delta "$before" "$after" >"$pre.counters"
}

# Both targets: byte-exact transfers and the same counters.
test_transfer() { # FAMILY MODE SET
	local tg
	for tg in RSYNPROXY SYNPROXY; do
		run_case "$1" "$2" $tg "$3"
		expect_eq "$tg counter deltas (syn_received cookie_invalid cookie_valid cookie_retrans conn_reopened)" \
			"$(cat "/tmp/dp/$1-$2-${3%%|*}-$tg.counters")" "2 0 2 0 0"
	done
}

# The captures of test_transfer, compared between the targets and against the set.
test_wire() { # FAMILY MODE SET
	local fam=$1 mode=$2 name synopts ts bmss tg
	IFS='|' read -r name _ _ _ synopts ts bmss <<<"$3"
	local -a mss=($bmss)
	local want_mss=${mss[0]}
	[ "$fam" = 4 ] || want_mss=${mss[1]}
	for tg in RSYNPROXY SYNPROXY; do
		local pre=/tmp/dp/$fam-$mode-$name-$tg
		wire conns --port $PORT "$pre.client.pcap" "$pre.backend.pcap" >"$pre.conns"
		sed "s/^/$tg: /" "$pre.conns"
		local n line
		for n in 1 2; do
			line=$(grep "^conn $n synack: " "$pre.conns") || fail "$tg: no connection $n in the capture"
			[[ $line == *" win=0 "* ]] || fail "$tg: the SYN-ACK does not announce window 0: $line"
			[ "$(sed -E 's/.* opts=\[(.*)\]$/\1/; s/TS val=[^ ]* ecr=[^],]*/TS/g' <<<"$line")" = "$synopts" ] ||
				fail "$tg: SYN-ACK options are not [$synopts]: $line"
			line=$(grep "^conn $n bsyn: " "$pre.conns")
			[[ $line == *" opts=[mss $want_mss,"* || $line == *" opts=[mss $want_mss]"* ]] || fail "$tg: backend SYN MSS is not $want_mss: $line"
			# The client ACK's window, unscaled, in a SYN.
			[[ $line == *" win="*"(=ack3) "* ]] || fail "$tg: backend SYN window is not the client ACK's: $line"
			line=$(grep "^conn $n wupd: " "$pre.conns")
			[[ $line == *" seq=synack+1 ack=syn+1 "* ]] || fail "$tg: no window update to the client: $line"
			line=$(grep "^conn $n bfin: " "$pre.conns")
			[[ $line == *" seq=syn+1 "* ]] || fail "$tg: no ACK completing the backend handshake: $line"
			line=$(grep "^conn $n rst: " "$pre.conns")
			[ "$line" = "conn $n rst: none" ] || fail "$tg: the client got a reset: $line"
		done
		[ "$(grep -c '^conn ' "$pre.conns")" = $((2 * 6)) ] || fail "$tg: not exactly two connections"
	done
	local r=/tmp/dp/$fam-$mode-$name-RSYNPROXY.conns c=/tmp/dp/$fam-$mode-$name-SYNPROXY.conns
	expect_eq "SYN-ACK, window update, backend SYN and final ACK of RSYNPROXY (got) and SYNPROXY (want)" \
		"$(grep -v ' tsecr: ' "$r")" "$(grep -v ' tsecr: ' "$c")"
}

# The final handshake ACK at the backend: RSYNPROXY echoes the backend's TSval; SYNPROXY
# shifts the echo by tsoff a second time (echo+tsoff = 2·TSval − cookie TSval).
test_tsecr() { # FAMILY SET
	local name ts r c
	IFS='|' read -r name _ _ _ _ ts _ <<<"$2"
	r=$(sed -n 's/^conn [0-9] tsecr: //p' "/tmp/dp/$1-forward-$name-RSYNPROXY.conns" | tr '\n' ' ')
	c=$(sed -n 's/^conn [0-9] tsecr: //p' "/tmp/dp/$1-forward-$name-SYNPROXY.conns" | tr '\n' ' ')
	if [ "$ts" = ts ]; then
		expect_eq "RSYNPROXY final ACK TSecr" "$r" "echoed echoed "
		expect_eq "SYNPROXY final ACK TSecr (C bug: shifted by tsoff)" "$c" "echo+tsoff echo+tsoff "
	else
		expect_eq "RSYNPROXY final ACK timestamps" "$r" "none none "
		expect_eq "SYNPROXY final ACK timestamps" "$c" "none none "
	fi
}

# SYN shapes of the cookie test: "rule options|SYN options|the SYN-ACK's flags, options and
# TSval low 6 bits (the timestamp cookie: wscale or 0xf, +16 SACK, +32 ECN)". Source port,
# ISN and TSval are fixed per shape: the cookie depends on addresses, ports, ISN, MSS table
# entry and the minute.
RA="--sack-perm --timestamp --wscale 7 --mss 1460 --ecn"
SHAPES=(
	"$RA|--mss 1460 --sackperm --ts --wscale 7|flags=SA opts=[mss 1460,sackOK,TS,nop,wscale 7] tslow=23"
	"$RA|--mss 1300 --sackperm --wscale 3 --ecn|flags=SA opts=[mss 1460] tslow=-"
	"$RA|--mss 1400 --ts --wscale 3 --ecn|flags=SAE opts=[mss 1460,nop,nop,TS,nop,wscale 7] tslow=35"
	"$RA|--mss 9000 --sackperm --ts|flags=SA opts=[mss 1460,sackOK,TS] tslow=31"
	"--mss 1400 --sack-perm --wscale 7|--mss 1460 --sackperm --ts --wscale 7|flags=SA opts=[mss 1400] tslow=-"
)

# synack_of FAMILY TARGET SHAPE-INDEX: the JSON of rawtcp synack-options for that shape.
synack_of() {
	local f=$1 tg=$2 i=$3 rule syn
	IFS='|' read -r rule syn _ <<<"${SHAPES[i]}"
	proxy_rules "$f" forward "$tg" $rule
	inns c python3 "$TOOLS/rawtcp.py" synack-options --iface veth0 --src "$(addr "$f" c)" \
		--dst "$(addr "$f" s)" --dport $CPORT --sport $((41000 + i)) --isn $((0x7e57c0de + 977 * i)) \
		--tsval $((123456 + i)) --timeout 3 $syn
}

test_cookie() { # FAMILY
	local f=$1 i tg run out want got
	rm -f /tmp/dp/syn.*
	for i in "${!SHAPES[@]}"; do
		# RSYNPROXY, SYNPROXY, RSYNPROXY: a minute boundary can pass between two of them only.
		for run in R1 C R2; do
			tg=RSYNPROXY
			if [ $run = C ]; then tg=SYNPROXY; fi
			synack_of "$f" $tg "$i" >>"/tmp/dp/syn.$run"
		done
	done
	proxy_flush
	out=$(wire synacks /tmp/dp/syn.R1 /tmp/dp/syn.C /tmp/dp/syn.R2) || fail "SYN-ACKs differ: $out"
	echo "$out"
	want=$(for i in "${!SHAPES[@]}"; do echo "${SHAPES[i]##*|}"; done)
	got=$(sed -nE 's/.* identical: (flags=[^ ]* opts=\[[^]]*\] tslow=[^ ]*) .*/\1/p' <<<"$out")
	expect_eq "SYN-ACK flags, options and timestamp cookie bits per shape" "$got" "$want"
	# Both leave the TCP checksum to the device (CHECKSUM_PARTIAL: on a veth the field holds
	# the pseudo-header sum), so the captured bytes are the same, checksum field included.
	got=$(sed -nE 's/.* csum=([^ ]*) .*/\1/p' <<<"$out" | sort -u)
	expect_eq "checksum kinds (RSYNPROXY/SYNPROXY/RSYNPROXY)" "$got" "partial/partial/partial"
}

t "topology: client, proxy and backend namespaces; the SYNPROXY modules load" setup
for fam in 4 6; do
	for set in "${SETS[@]}"; do
		label="IPv$fam forward ${set%%|*}"
		t "$label: both targets proxy two connections byte-exact both ways, counters 2 0 2 0 0" test_transfer $fam forward "$set"
		t "$label: SYN-ACK (window 0), window update, backend SYN (MSS from the cookie table) and final ACK equal on the wire" test_wire $fam forward "$set"
		if [[ $set == *"|ts|"* ]]; then
			t "$label: backend sees its own TSval echoed in the final ACK (SYNPROXY: shifted by tsoff)" test_tsecr $fam "$set"
		else
			t "$label: no timestamps in the final ACK to the backend (none negotiated; both targets)" test_tsecr $fam "$set"
		fi
	done
	# INPUT: the first and last sets cover timestamps on and off, the coarse MSS and ECN. The
	# backend's SYN-ACK never reaches a wire there (stolen at POST_ROUTING): no TSecr check.
	for set in "${SETS[0]}" "${SETS[3]}"; do
		label="IPv$fam input ${set%%|*}"
		t "$label: both targets proxy two connections byte-exact both ways, counters 2 0 2 0 0" test_transfer $fam input "$set"
		t "$label: SYN-ACK, window update, backend SYN and final ACK equal on the wire" test_wire $fam input "$set"
	done
	t "IPv$fam: identical SYNs get byte-identical SYN-ACKs from both targets, cookie ISN included (5 SYN shapes)" test_cookie $fam
done
