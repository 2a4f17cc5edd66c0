#!/bin/bash
# `make bench`, inside one VM boot: RSYNPROXY against the C SYNPROXY, same topology, same
# load, alternating runs. Prints absolute numbers (noise on shared machines) and the ratio
# RSYNPROXY / SYNPROXY per row. Not part of `make check`; never a pass/fail.
. "$(dirname "$0")/guest/topo.sh"
topo_up
modprobe ipt_SYNPROXY
modprobe ip6t_SYNPROXY
RULE=(--sack-perm --timestamp --wscale 7 --mss 1460)
REPS=${REPS:-3}
DST=10.0.2.99

# synacks TARGET: SYN-ACKs per second the proxy sends for a spoofed flood.
synacks() {
	local before after t0 t1
	before=$(stat_sum r "$(stat_file "$1")" | cut -d' ' -f1)
	t0=$(date +%s.%N)
	inns c python3 "$TOOLS/rawtcp.py" flood --src-net 10.0.3.0/24 --dst $DST --dport 9000 --count 40000 >/dev/null
	t1=$(date +%s.%N)
	after=$(stat_sum r "$(stat_file "$1")" | cut -d' ' -f1)
	echo "($after - $before) / ($t1 - $t0)" | bc -l
}

# cps TARGET: connections per second set up through the proxy (sequential).
cps() {
	ip netns exec s python3 "$TOOLS/xfer.py" server $DST 9001 --count 300 >/tmp/b.srv 2>&1 &
	local srv=$!
	wait_for grep -q listening /tmp/b.srv
	inns c python3 "$TOOLS/xfer.py" conns $DST 9001 300
	kill $srv 2>/dev/null
	wait $srv 2>/dev/null
}

# bulk TARGET: iperf3 throughput through seqadj and the timestamp translation, Mbit/s.
bulk() {
	ip netns exec s iperf3 -s -1 -B $DST -p 9002 >/dev/null 2>&1 &
	local srv=$!
	sleep 1
	inns c iperf3 -c $DST -p 9002 -t 5 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6)'
	wait $srv 2>/dev/null
}

declare -A sum n
for rep in $(seq "$REPS"); do
	for tg in RSYNPROXY SYNPROXY; do
		proxy_rules 4 forward $tg "${RULE[@]}"
		for m in synacks cps bulk; do
			v=$($m $tg 2>/dev/null | tail -n 1)
			echo "# rep $rep $tg $m ${v:-failed}" >&2
			# A failed run (a timeout, say) is reported and left out of the mean.
			[[ $v =~ ^[0-9.]+$ ]] || continue
			sum[$tg.$m]=$(echo "${sum[$tg.$m]:-0} + $v" | bc -l)
			n[$tg.$m]=$((${n[$tg.$m]:-0} + 1))
		done
	done
done

printf '\n%-38s %14s %14s %8s\n' "metric (mean of up to $REPS, IPv4 FORWARD)" RSYNPROXY SYNPROXY ratio
for m in synacks cps bulk; do
	case $m in synacks) label="SYN-ACKs/s under a spoofed flood" ;; cps) label="connections/s through the proxy" ;;
	bulk) label="bulk Mbit/s through seqadj" ;; esac
	if [ -z "${n[RSYNPROXY.$m]}" ] || [ -z "${n[SYNPROXY.$m]}" ]; then
		printf '%-38s %s\n' "$label" "no complete run"
		continue
	fi
	r=$(echo "${sum[RSYNPROXY.$m]} / ${n[RSYNPROXY.$m]}" | bc -l)
	c=$(echo "${sum[SYNPROXY.$m]} / ${n[SYNPROXY.$m]}" | bc -l)
	printf '%-38s %14.1f %14.1f %8.3f\n' "$label" "$r" "$c" "$(echo "$r / $c" | bc -l)"
done
echo "(the flood generator is Python in the same VM: if both SYN-ACK rates sit at its own rate, that row measures the generator)"
