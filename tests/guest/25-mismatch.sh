#!/bin/bash
# A backend whose options differ from the rule's, side by side with the in-tree C SYNPROXY,
# over a path with 40 ms of round-trip time (netem, 20 ms each way in the proxy).
#
# The backend's window scale is set through its tcp_rmem (2 and 9 against the rule's 7; the
# value announced is read back from a capture). First what SYNPROXY does: the client reads
# every window of the backend with the rule's scale (captures at both ends: the largest
# window the client believes against the largest the backend offers), with the
# retransmissions and drops that follow and the goodput against a rule that matches the
# backend, as `figure` lines (they decide nothing: timing under TCG). Then RSYNPROXY with
# the mismatched rule: a multi-MB upload byte-exact, every window the backend sends
# (the proxy's own window update included) rewritten on the client's wire to
# min((win << backend) >> rule, 65535), the mismatch counter and the log line. Then each
# other kind of mismatch alone (MSS larger, MSS smaller, SACK absent, timestamps absent):
# its counter and its log line, and a byte-exact transfer.
. "$(dirname "$0")/topo.sh"

PORT=8082
SMALL=8083
RULE=(--sack-perm --timestamp --mss 1460)
BYTES=$((2 << 20))
W=/tmp/mm

setup() {
	topo_up
	modprobe ipt_SYNPROXY
	modprobe ip6t_SYNPROXY
	modprobe rsynproxy
	local d
	for d in veth0 veth1; do
		inns r tc qdisc add dev $d root netem delay 20ms limit 10000
	done
	rm -rf $W
	mkdir -p $W
	# The backend servers for every test (IPv4 and IPv6), a thread per connection; stopped
	# at the end of the file (not tracked by the test: they outlive it). A connection's
	# receive buffer starts as its listener's, which is tcp_rmem[1] when the listener was
	# made: $SMALL's is made under the window-scale-2 setting (16 KiB, and autotuning
	# bounded by its tcp_rmem[2]), so that backend is also one with a small window; $PORT's
	# under Linux's defaults. (SO_RCVBUF would lower the window scale too, to 0.)
	backend 2
	ip netns exec s python3 "$TOOLS/xfer.py" server :: $SMALL --parallel >$W/srv.small 2>&1 &
	echo $! >$W/srv.pid
	wait_for grep -q listening $W/srv.small || fail "server did not start: $(cat $W/srv.small)"
	backend 7
	ip netns exec s python3 "$TOOLS/xfer.py" server :: $PORT --parallel >$W/srv 2>&1 &
	echo $! >>$W/srv.pid
}

# backend WSCALE: the window scale the backend announces (2, 7: Linux's default, or 9),
# through the largest receive buffer: ilog2(max(tcp_rmem[2], net.core.rmem_max)) - 15,
# rmem_max being 212992 (the buffers of the connections come from the listeners: setup).
# The rest of the backend's options back to Linux's defaults.
backend() {
	local rmem
	case $1 in
	2) rmem="4096 16384 16384" ;;
	7) rmem="4096 131072 6291456" ;;
	9) rmem="4096 131072 16777216" ;;
	esac
	inns s sysctl -qw net.ipv4.tcp_rmem="$rmem" net.ipv4.tcp_sack=1 net.ipv4.tcp_timestamps=1
	inns s ip route replace default via 10.0.2.1
}

# counters FILE: FILE's five counters and the five mismatch counters of r, each summed over
# CPUs ("a b c d e|v w x y z"), read by one process.
counters() {
	local -a sum=(0 0 0 0 0 0 0 0 0 0) col
	local line f=-1 i
	while read -r line; do
		col=($line)
		if [ "${col[0]}" = entries ]; then
			f=$((f + 1))
			continue
		fi
		[ ${#col[@]} = 6 ] || fail "malformed line '$line'"
		for i in 0 1 2 3 4; do sum[f * 5 + i]=$((sum[f * 5 + i] + 16#${col[i + 1]})); done
	done < <(inns r cat "/proc/net/stat/$1" /proc/net/stat/rsynproxy_mismatch)
	[ $f = 1 ] || fail "not two counter files"
	echo "${sum[*]:0:5}|${sum[*]:5:5}"
}

# kmsg_mark / kmsg_since MARK: the kernel log lines after a mark.
kmsg_mark() { dmesg | wc -l; }
kmsg_since() { dmesg | tail -n +$(($1 + 1)); }

# run NAME FAMILY TARGET RULE_WSCALE BYTES [RULE OPTIONS...]: one upload of BYTES through
# TARGET, captured at the client and at the backend (CAPTURE=0: not). Leaves in $W/NAME.*:
# the client's output (.xfer, exit status in .rc), the captures, the counter deltas
# (.counters, and .mismatch), the kernel log lines (.kmsg), the client flow (.flow).
run() {
	local name=$1 fam=$2 tg=$3 rws=$4 bytes=$5 pre=$W/$1 dst mark b1 b2 rc=0 port=${RPORT:-$PORT}
	shift 5
	local -a rule=("${RULE[@]}")
	[ $# -gt 0 ] && rule=("$@")
	dst=$(addr "$fam" s)
	# One restore per run (a process start costs much under TCG): the recipe in FORWARD.
	recipe "$tg" "${rule[@]}" --wscale "$rws" | inns r "$(ipt_of "$fam")-restore"
	rm -f "$pre".*
	if [ "$port" = $PORT ]; then
		wait_for grep -q listening $W/srv || fail "server did not start: $(cat $W/srv)"
	fi
	local c1= c2=
	if [ "${CAPTURE:-1}" = 1 ]; then
		capture c veth0 "$pre.client.pcap" tcp port $port
		c1=$CAP_PID
		capture s veth0 "$pre.backend.pcap" tcp port $port
		c2=$CAP_PID
	fi
	b1=$(counters "$(stat_file "$tg")")
	mark=$(kmsg_mark)
	timeout 30 ip netns exec c python3 "$TOOLS/xfer.py" client "$dst" "$port" "$bytes" 1000 --seed 5 --timeout 15 \
		>"$pre.xfer" 2>&1 || rc=$?
	echo $rc >"$pre.rc"
	b2=$(counters "$(stat_file "$tg")")
	kmsg_since "$mark" >"$pre.kmsg"
	stat_delta "${b1%|*}" "${b2%|*}" >"$pre.counters"
	stat_delta "${b1#*|}" "${b2#*|}" >"$pre.mismatch"
	if [ -n "$c1" ]; then
		settle "$pre.client.pcap" "$pre.backend.pcap"
		stop $c1 $c2
	fi
}

# report NAME BACKEND_WSCALE [--identity]: tests/tools/windows.py report on a run's captures
# (the client's windows against the backend's, the client's flow, the scales announced).
report() {
	local n=$1 bws=$2
	shift 2
	python3 "$TOOLS/windows.py" report --port "${RPORT:-$PORT}" --bws "$bws" --aws 7 "$@" "$W/$n.client.pcap" "$W/$n.backend.pcap"
}

# mbps NAME BYTES: goodput of a run in Mbit/s (from the client's own clock), or "failed".
mbps() {
	local s
	s=$(sed -nE 's/.*byte-exact in ([0-9.]+) s$/\1/p' "$W/$1.xfer")
	if [ "$(cat "$W/$1.rc")" != 0 ] || [ -z "$s" ]; then
		echo failed
		return 0
	fi
	awk -v b="$2" -v s="$s" 'BEGIN { printf "%.1f\n", b * 8 / s / 1e6 }'
}

json_get() { # JSON KEY.KEY...: a value, without a process start (bash regex on flat keys)
	local j=$1 k
	for k in ${2//./ }; do
		[[ $j =~ \"$k\":\ ?(\{[^{}]*\}|[^,}]*) ]] || fail "no $2 in $1"
		j=${BASH_REMATCH[1]}
	done
	echo "$j"
}

# announced REPORT: the window scale the backend's SYN-ACK and the proxy's SYN-ACK carried.
announced() { echo "backend=$(json_get "$1" backend.synack) client=$(json_get "$1" client.synack)"; }

# SYNPROXY with a rule matching the backend, then with the rule's 7: both byte-exact or
# not, the goodputs, the windows the client believed, the retransmissions and the drops.
test_synproxy_harm() { # BACKEND_WSCALE
	local bws=$1 m=sp-ws$1-matched x=sp-ws$1-rule7 out
	backend "$bws"
	CAPTURE=0 run $m 4 SYNPROXY "$bws" $BYTES
	expect_eq "matched SYNPROXY transfer" "$(cat $W/$m.rc)" 0
	run $x 4 SYNPROXY 7 $BYTES
	# SYNPROXY passes the backend's window fields on as they are: the client multiplies
	# them by 2^7, the backend meant 2^bws.
	out=$(report $x "$bws" --identity) || fail "SYNPROXY changed windows? $out"
	echo "$out"
	expect_eq "wscale announced (backend, client) with rule 7" "$(announced "$out")" "backend=$bws client=7"
	local -a c=($(cat $W/$x.counters))
	figure "mismatch=synproxy-ws$bws-rule7 believed_max=$(json_get "$out" compare.believed_max)" \
		"backend_offered_max=$(json_get "$out" compare.offered_max) retransmitted=$(json_get "$out" flow.retransmitted)" \
		"segments=$(json_get "$out" flow.segments) dropped_as_invalid=${c[1]} outcome=$([ "$(cat $W/$x.rc)" = 0 ] && echo byte-exact || echo failed)" \
		"mbps=$(mbps $x $BYTES) matched_mbps=$(mbps $m $BYTES)"
	tail -n 1 "$RSYNPROXY_OUT/figures"
}

# RSYNPROXY with rule 7 against the same backend.
test_rsynproxy_fix() { # FAMILY BACKEND_WSCALE BYTES
	local fam=$1 bws=$2 bytes=$3 n=rsp$1-ws$2-rule7 out want host
	backend "$bws"
	# The rule's MSS is the backend's (1500-byte MTU): only the window scale differs.
	local -a rule=("${RULE[@]}")
	[ "$fam" = 6 ] && rule=(--sack-perm --timestamp --mss 1440)
	run $n "$fam" RSYNPROXY 7 "$bytes" "${rule[@]}"
	[ "$(cat $W/$n.rc)" = 0 ] || fail "transfer failed: $(cat $W/$n.xfer)"
	cat $W/$n.xfer
	if [ "${CAPTURE:-1}" = 1 ]; then
		out=$(report $n "$bws") || fail "windows not translated: $out"
		echo "$out"
		expect_eq "wscale announced (backend, client)" "$(announced "$out")" "backend=$bws client=7"
		[ "$(json_get "$out" compare.changed)" -gt 0 ] || fail "no window changed on the way: $out"
	fi
	expect_eq "counters (syn_received cookie_invalid cookie_valid retrans reopened)" "$(cat $W/$n.counters)" "1 0 1 0 0"
	expect_eq "mismatch counters (wscale mss_larger mss_smaller sack_absent ts_absent)" "$(cat $W/$n.mismatch)" "1 0 0 0 0"
	host=$(addr "$fam" s)
	[ "$fam" = 6 ] && host="[$host]"
	want="rsynproxy: backend $host:${RPORT:-$PORT} announces other options than the client was given: wscale $bws (client told 7)"
	grep -qF "$want" $W/$n.kmsg || fail "no log line '$want' in: $(cat $W/$n.kmsg)"
	[ "$(grep -c 'rsynproxy: backend' $W/$n.kmsg)" = 1 ] || fail "not one log line: $(cat $W/$n.kmsg)"
	if [ "${CAPTURE:-1}" = 1 ]; then
		figure "mismatch=rsynproxy$fam-ws$bws-rule7 believed_max=$(json_get "$out" compare.believed_max)" \
			"backend_offered_max=$(json_get "$out" compare.offered_max) retransmitted=$(json_get "$out" flow.retransmitted)" \
			"segments=$(json_get "$out" flow.segments) outcome=byte-exact mbps=$(mbps $n "$bytes")"
		tail -n 1 "$RSYNPROXY_OUT/figures"
	fi
}

# One kind of mismatch alone (the backend's window scale is the rule's 7): a transfer
# through RSYNPROXY, its counter, its log line.
test_kind() { # NAME WANT-COUNTERS LOG-TEXT BACKEND-SETUP... -- RULE...
	local name=$1 want=$2 text=$3 n=kind-$1
	shift 3
	backend 7
	local -a setup=()
	while [ "$1" != -- ]; do
		setup+=("$1")
		shift
	done
	shift
	inns s "${setup[@]}"
	CAPTURE=0 run $n 4 RSYNPROXY 7 100000 "$@"
	backend 7
	[ "$(cat $W/$n.rc)" = 0 ] || fail "transfer failed: $(cat $W/$n.xfer)"
	expect_eq "mismatch counters (wscale mss_larger mss_smaller sack_absent ts_absent)" "$(cat $W/$n.mismatch)" "$want"
	local line="rsynproxy: backend 10.0.2.99:$PORT announces other options than the client was given: $text"
	grep -qxF "$line" <(sed -E 's/^\[[ 0-9.]+\] //' $W/$n.kmsg) || fail "no log line '$line' in: $(cat $W/$n.kmsg)"
}

# The second proc file: per-CPU lines of the same format as the first.
test_proc_file() {
	local text
	text=$(inns r cat /proc/net/stat/rsynproxy_mismatch)
	expect_eq "header" "$(head -n 1 <<<"$text")" "$(printf 'entries\t\twscale\tmss_larger\tmss_smaller\tsack_absent\tts_absent')"
	expect_eq "CPU lines" "$(tail -n +2 <<<"$text" | grep -cP '^00000000(\t[0-9a-f]{8}){5}$')" "$(nproc)"
	expect_eq "the first file's header (SYNPROXY's)" "$(inns r head -n 1 /proc/net/stat/rsynproxy)" \
		"$(printf 'entries\t\tsyn_received\tcookie_invalid\tcookie_valid\tcookie_retrans\tconn_reopened')"
}

RSP=$RSYNPROXY_TOP/userspace/target/release/rsynproxy

# After the tests above: r's mismatch counters are not all zero. `rsynproxy stats` shows them
# as text, JSON and Prometheus text (read back by prometheus_client's parser).
test_tool() {
	local want got
	want=$(counters rsynproxy)
	want=${want#*|}
	[ "$want" != "0 0 0 0 0" ] || fail "no mismatch counted before"
	got=$("$RSP" stats --netns r)
	got=$(sed -n '/^rsynproxy_mismatch:$/,$p' <<<"$got" | awk 'NR > 1 { printf "%s ", $2 }')
	expect_eq "stats: the rsynproxy_mismatch section" "$got" "$want "
	got=$("$RSP" stats --netns r --json | python3 -c '
import json, sys
names = ["wscale", "mss_larger", "mss_smaller", "sack_absent", "ts_absent"]
for line in sys.stdin:
    o = json.loads(line)
    if o["file"] == "rsynproxy_mismatch":
        print(" ".join(str(o["totals"][n]) for n in names))')
	expect_eq "stats --json: rsynproxy_mismatch" "$got" "$want"
	got=$("$RSP" stats --netns r --prometheus | /usr/bin/python3 -c '
import sys
from prometheus_client.parser import text_string_to_metric_families
names = ["wscale", "mss_larger", "mss_smaller", "sack_absent", "ts_absent"]
v = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    assert fam.type == "counter", (fam.name, fam.type)
    for smp in fam.samples:
        if smp.name.startswith("rsynproxy_mismatch_") and smp.name.endswith("_total"):
            assert smp.labels == {"netns": "r", "target": "RSYNPROXY"}, smp.labels
            v[smp.name[len("rsynproxy_mismatch_"):-len("_total")]] = int(smp.value)
print(" ".join(str(v.get(n)) for n in names))')
	expect_eq "stats --prometheus: rsynproxy_mismatch_*_total" "$got" "$want"
}

t "topology with 40 ms round trip (netem in the proxy); the SYNPROXY modules load" setup
RPORT=$SMALL t "IPv4 backend wscale 2, rule 7: SYNPROXY passes the windows on unscaled, the client believes 32 times the backend's (figures: harm against a matched rule)" test_synproxy_harm 2
RPORT=$SMALL t "IPv4 backend wscale 2, rule 7: RSYNPROXY 2 MiB byte-exact, every backend window (and its window update) translated on the client's wire, counted, logged" test_rsynproxy_fix 4 2 $BYTES
t "IPv4 backend wscale 9, rule 7: SYNPROXY passes the windows on unscaled, the client believes a quarter of the backend's (figures: harm against a matched rule)" test_synproxy_harm 9
t "IPv4 backend wscale 9, rule 7: RSYNPROXY 2 MiB byte-exact, every backend window (and its window update) translated on the client's wire, counted, logged" test_rsynproxy_fix 4 9 $BYTES
CAPTURE=0 RPORT=$SMALL t "IPv6 backend wscale 2, rule 7: RSYNPROXY 1 MiB byte-exact, counted, the log line names [fd00:2::99]:$SMALL" test_rsynproxy_fix 6 2 $((1 << 20))
t "backend MSS larger than the rule's: counted (mss_larger) and logged with both values" \
	test_kind mss-larger "0 1 0 0 0" "mss 1460 (client told 1300, larger)" true -- --sack-perm --timestamp --mss 1300
t "backend MSS smaller than the rule's: counted (mss_smaller) and logged with both values" \
	test_kind mss-smaller "0 0 1 0 0" "mss 1200 (client told 1460, smaller)" ip route replace default via 10.0.2.1 advmss 1200 --
t "backend without SACK, rule with: counted (sack_absent) and logged" \
	test_kind sack-absent "0 0 0 1 0" "no sackOK (client told sackOK)" sysctl -qw net.ipv4.tcp_sack=0 --
t "backend without timestamps, rule with: counted (ts_absent) and logged" \
	test_kind ts-absent "0 0 0 0 1" "no TS (client told TS)" sysctl -qw net.ipv4.tcp_timestamps=0 --
t "/proc/net/stat/rsynproxy_mismatch: header and one line per CPU in the format of /proc/net/stat/rsynproxy" test_proc_file
t "rsynproxy stats shows the mismatch counters: text, --json, --prometheus (prometheus_client's parser)" test_tool

kill $(cat $W/srv.pid) 2>/dev/null || true
