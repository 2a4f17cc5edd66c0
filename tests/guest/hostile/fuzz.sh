#!/bin/bash
# Wire fuzzing (tests/tools/fuzzwire.py builds the structures, trafgen sends them with fresh
# random fields and checksums per frame), RSYNPROXY then the in-tree SYNPROXY, same frames,
# same boot. IPv4 and IPv6, INPUT (server in r, port 8081/8084) and FORWARD (s, 8080/8083).
#
# Target path: frames from spoofed sources to no connection; the counters must equal the
# model exactly (fuzzwire.py's docstring; `make check` also checks the model against scapy's
# reading of trafgen's own output). Proxied connections: frames with the 4-tuples of live
# proxied connections, both directions, near their sequence numbers or at the wrap.
# Meanwhile one long transfer runs through the proxy and must arrive byte-exact both ways.
# HOSTILE_FUZZ_FRAMES sets the frames per phase and target (make soak: 200000 and more).
. "$(dirname "$0")/../topo.sh"

FRAMES=${HOSTILE_FUZZ_FRAMES:-20000}
SEED=${HOSTILE_SEED:-1}
W=/tmp/hostile/fuzz
RULE=(--sack-perm --timestamp --wscale 7 --mss 1460)

setup() {
	hostile_setup "$W"
	# A frame dropped before the proxy would make the counts lie: deep backlogs, and the
	# drops are checked (softnet_stat) after each run.
	sysctl -qw net.core.netdev_max_backlog=300000
	fuzzwire gen --phase target --count "$FRAMES" --seed "$SEED" --macs "$MACS" --out "$W/target" >"$W/target.gen"
}

# fresh: new namespaces for each test (no packet of an earlier test's connections can reach
# the counters), and the transfer's server.
fresh() {
	topo_up
	ip netns exec s python3 "$TOOLS/xfer.py" server 10.0.2.99 8082 --parallel >/dev/null 2>&1 &
	bg_track $!
	[[ $MACS == *"r0=$(mac r veth0),"* ]] || fail "r's veth0 is not at the address the frames were built for"
}

fuzzwire() { python3 "$TOOLS/fuzzwire.py" "$@"; }


# send NS DIR STREAM: trafgen on NS's veth0, one process, every template the same number of times.
send() {
	local n
	n=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['streams'][sys.argv[2]]['frames'])" "$2/expect.json" "$3")
	trafgen_in "$1" -i "$2/$3.cfg" -o veth0 -n "$n" -P 1 -E "$SEED" -q >"$2/$3.trafgen" 2>&1 ||
		fail "trafgen in $1: $(tail -n 3 "$2/$3.trafgen")"
	grep -qE "(^|[^0-9])$n packets outgoing" "$2/$3.trafgen" || fail "trafgen in $1 did not send $n frames: $(cat "$2/$3.trafgen")"
}

# expect DIR KEY: a number of DIR/expect.json (frames: all streams together).
expect() {
	python3 -c 'import json, sys
e = json.load(open(sys.argv[1]))
print(sum(s["frames"] for s in e["streams"].values()) if sys.argv[2] == "frames" else e[sys.argv[2]])' "$1/expect.json" "$2"
}

# stream_start / stream_stop: the long checked transfer (c -> s:8082 through the proxy).
stream_start() {
	rm -f "$W/stop"
	inns c python3 "$TOOLS/xfer.py" stream 10.0.2.99 8082 --until "$W/stop" >"$W/stream.out" 2>&1 &
	STREAM=$!
	bg_track $STREAM
	# The transfer's handshake must be over before the counters are read.
	wait_for inns r grep -q "ESTABLISHED.*dport=8082 " /proc/net/nf_conntrack ||
		fail "the transfer did not get through the proxy"
}
stream_stop() {
	touch "$W/stop"
	wait "$STREAM" || fail "the transfer through the proxy failed: $(cat "$W/stream.out")"
	STREAM_BYTES=$(cat "$W/stream.out")
}

stat_settle() { # the counters of r's FILE once they have stopped moving
	local a b
	b=$(stat_sum r "$1")
	for _ in $(seq 30); do
		sleep 0.5
		a=$b
		b=$(stat_sum r "$1")
		[ "$a" = "$b" ] && break
	done
	echo "$b"
}


fuzz_target() {
	local tg=$1 file before after d0 d1 want
	file=$(stat_file "$tg")
	fresh
	proxy_rules_all "$tg" "${RULE[@]}"
	stream_start
	before=$(stat_settle "$file")
	d0=$(drops)
	send c "$W/target" c
	after=$(stat_settle "$file")
	d1=$(drops)
	stream_stop
	[ "$d0" = "$d1" ] || fail "$((d1 - d0)) frames dropped by the backlog: the counts cannot be checked"
	want="$(expect "$W/target" syn) $(expect "$W/target" ack) 0 0 0"
	figure "fuzz-target $tg frames=$(expect "$W/target" frames) counters=$(stat_delta "$before" "$after" | tr ' ' ,) transfer_bytes=$STREAM_BYTES"
	expect_eq "counter deltas (syn_received cookie_invalid cookie_valid cookie_retrans conn_reopened)" \
		"$(stat_delta "$before" "$after")" "$want"
}

fuzz_conns() {
	local tg=$1 file before after dir=$W/conns-$1 p=8083
	# Ports of their own per target: nothing of the other run can be in the way.
	[ "$tg" = SYNPROXY ] && p=8183
	file=$(stat_file "$tg")
	fresh
	proxy_rules_all "$tg" "${RULE[@]}"
	rm -rf "$dir"
	mkdir -p "$dir"
	hold_conns "$dir" 4:s:10.0.2.99:$p:2 6:s:fd00:2::99:$p:2 4:r:10.0.1.1:$((p + 1)):1 6:r:fd00:1::1:$((p + 1)):1
	fuzzwire gen --phase conns --count "$((FRAMES / 2))" --seed "$SEED" --macs "$MACS" --conns "$dir/conns.json" --out "$dir" >"$dir/gen"
	stream_start
	before=$(stat_settle "$file")
	send c "$dir" c &
	local sc=$!
	send s "$dir" s
	wait $sc || fail "trafgen from the client side failed"
	after=$(stat_settle "$file")
	stream_stop
	stop $HOLDER
	local -a d=($(stat_delta "$before" "$after"))
	figure "fuzz-conns $tg frames=$(expect "$dir" frames) counters=$(stat_delta "$before" "$after" | tr ' ' ,) transfer_bytes=$STREAM_BYTES"
	expect_eq "syn_received (every valid SYN-class frame from the client side)" "${d[0]}" "$(expect "$dir" syn)"
	((d[1] + d[2] <= $(expect "$dir" ack))) || fail "cookie checks ${d[1]}+${d[2]} exceed the ACK-class frames $(expect "$dir" ack)"
}

setup
for tg in RSYNPROXY SYNPROXY; do
	t "wire fuzz, target path, IPv4+IPv6 INPUT+FORWARD: counters equal the model, transfer byte-exact ($tg)" fuzz_target $tg
	t "wire fuzz, proxied connections both ways: syn_received exact, transfer byte-exact ($tg)" fuzz_conns $tg
done
for n in c r s; do ip netns del $n 2>/dev/null || true; done
