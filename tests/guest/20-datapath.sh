#!/bin/bash
# The proxy end to end, side by side with the in-tree C SYNPROXY: for IPv4 and IPv6, for
# "protect backend" (FORWARD) and "protect local" (INPUT), with several option sets, two
# connections each carry data both ways byte-exact through seqadj. The outcomes — success,
# counter deltas, the SYN-ACK's options on the wire — must be equal for both targets; the
# backend's view of the final handshake ACK is where they differ (documented fix).
. "$(dirname "$0")/topo.sh"

topo_up || { echo "not ok - topology"; exit 1; }
modprobe ipt_SYNPROXY && modprobe ip6t_SYNPROXY
PORT=8080

# option sets: "name|rule options|client sysctls|client mtu"
SETS=(
	"full|--sack-perm --timestamp --wscale 7 --mss 1460||"
	"no-timestamp-rule|--mss 1460 --sack-perm --wscale 7||"
	"client-without-options|--sack-perm --timestamp --wscale 7 --mss 1460|net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=0 net.ipv4.tcp_window_scaling=0|"
	"coarse-mss-ecn|--sack-perm --timestamp --wscale 7 --mss 1400 --ecn|net.ipv4.tcp_ecn=1|1440"
)

client_setup() { # sysctls mtu
	inns c sysctl -qw net.ipv4.tcp_timestamps=1 net.ipv4.tcp_sack=1 net.ipv4.tcp_window_scaling=1 net.ipv4.tcp_ecn=2
	[ -n "$1" ] && inns c sysctl -qw $1
	inns c ip link set veth0 mtu "${2:-1500}"
}

# synack_line FILE: the SYN-ACKs the client saw, numbers that differ per run removed.
synacks() {
	tcpdump -r "$1" -nn 2>/dev/null | grep 'Flags \[S\.E*\]' |
		sed -E 's/^[0-9:.]+ //; s/\.[0-9]+ > / > /; s/ > ([0-9a-f.:]+)\.[0-9]+:/ > \1:/;
			s/seq [0-9]+/seq N/; s/ack [0-9]+/ack N/; s/val [0-9]+ ecr [0-9]+/val N ecr N/'
}

# tsecr_check FILE SERVERPORT: the final ACK to the server echoes its SYN-ACK's TSval?
tsecr_check() {
	local out val ecr
	out=$(tcpdump -r "$1" -nn 2>/dev/null)
	val=$(printf '%s\n' "$out" | grep -m1 -E "\.$2 > .*Flags \[S\.E*\]" | sed -nE 's/.*TS val ([0-9]+) ecr.*/\1/p')
	[ -n "$val" ] || { echo none; return; }
	ecr=$(printf '%s\n' "$out" | grep -E "\.$2: Flags \[\.\]" | head -n 1 | sed -nE 's/.*TS val [0-9]+ ecr ([0-9]+).*/\1/p')
	[ "$val" = "$ecr" ] && echo echoed || echo "shifted($val->$ecr)"
}

# run_case FAMILY MODE TARGET SET: prints one comparable outcome line; details on stderr.
run_case() {
	local fam=$1 mode=$2 tg=$3 name rule sysctls mtu
	IFS='|' read -r name rule sysctls mtu <<<"$4"
	client_setup "$sysctls" "$mtu"
	proxy_rules "$fam" "$mode" "$tg" $rule || { echo "rules refused"; return; }
	local dst srvns=s cap=/tmp/cap.$$ bcap=/tmp/bcap.$$ bif=veth0
	if [ "$mode" = input ]; then
		dst=$(addr "$fam" r)
		srvns=r
		bif=lo
	else
		dst=$(addr "$fam" s)
	fi
	# Background processes: ip netns exec directly (a function would leave its child running
	# when killed) and no inherited stdout (the caller reads it to the end).
	ip netns exec "$srvns" python3 "$TOOLS/xfer.py" server "$dst" $PORT --count 2 >/tmp/srv.$$ 2>&1 &
	local srv=$!
	ip netns exec c tcpdump -i veth0 -nn -U -w $cap tcp port $PORT >/dev/null 2>&1 &
	local d1=$!
	ip netns exec "$srvns" tcpdump -i $bif -nn -U -w $bcap tcp port $PORT >/dev/null 2>&1 &
	local d2=$!
	wait_for grep -q listening /tmp/srv.$$
	wait_for test -s $cap
	wait_for test -s $bcap
	local before after res=ok
	before=$(stat_sum r "$(stat_file "$tg")")
	inns c python3 "$TOOLS/xfer.py" client "$dst" $PORT 100000 300000 --seed 1 >&2 || res=fail
	inns c python3 "$TOOLS/xfer.py" client "$dst" $PORT 70001 1 --seed 2 >&2 || res=fail
	after=$(stat_sum r "$(stat_file "$tg")")
	sleep 0.5
	kill $d1 $d2 2>/dev/null
	wait $d1 $d2 2>/dev/null
	kill $srv 2>/dev/null
	wait $srv 2>/dev/null
	echo "transfer=$res counters=[$(stat_delta "$before" "$after")] synack=[$(synacks $cap | sort -u | tr '\n' ';')]"
	# In INPUT mode the backend's SYN-ACK never reaches a wire (stolen at POST_ROUTING).
	if [ "$mode" = forward ]; then tsecr_check $bcap $PORT; else echo n/a; fi >/tmp/tsecr.$tg
	rm -f $cap $bcap /tmp/srv.$$
}

compare() { # FAMILY MODE SET
	local name=${3%%|*} r c rt ct
	r=$(run_case "$1" "$2" RSYNPROXY "$3" 2>/tmp/err.r)
	rt=$(cat /tmp/tsecr.RSYNPROXY)
	c=$(run_case "$1" "$2" SYNPROXY "$3" 2>/tmp/err.c)
	ct=$(cat /tmp/tsecr.SYNPROXY)
	local label="IPv$1 $2 $name"
	if [[ $r == transfer=ok\ counters=\[2\ 0\ 2\ 0\ 0\]* ]] && [ "$r" = "$c" ]; then
		echo "ok - $label: byte-exact both ways, same counters and SYN-ACK as SYNPROXY"
	else
		echo "not ok - $label: RSYNPROXY and SYNPROXY differ or failed"
		printf '#   RSYNPROXY: %s\n#   SYNPROXY:  %s\n' "$r" "$c"
		sed 's/^/#   rsynproxy stderr: /' /tmp/err.r
		sed 's/^/#   synproxy stderr: /' /tmp/err.c
	fi
	# The final handshake ACK must echo the backend's TSval; SYNPROXY shifts it by the
	# timestamp offset a second time.
	case $rt in
	n/a) ;;
	echoed | none) echo "ok - $label: backend sees its own TSval echoed in the final ACK (SYNPROXY: $ct)" ;;
	*) echo "not ok - $label: backend ACK TSecr $rt (SYNPROXY: $ct)" ;;
	esac
}

for fam in 4 6; do
	for set in "${SETS[@]}"; do
		compare $fam forward "$set"
	done
	# INPUT: the first and last sets cover timestamps on and off, the coarse MSS and ECN.
	compare $fam input "${SETS[0]}"
	compare $fam input "${SETS[3]}"
done
