#!/bin/bash
# `make bench`, guest part "sat": one proxy vCPU saturated by a generator on another vCPU of
# the same guest (issue #11 item 2, "off the proxy's CPUs"), RSYNPROXY and SYNPROXY in one
# boot of the non-debug bench kernel with 2 vCPUs.
#
#   c veth0 ── trafgen on vCPU 1, spoofed SYNs (10.3.0.0/16, random ports and ISNs, MSS)
#   r veth0 ── RPS: every frame from c is processed on vCPU 0, the proxy's; r answers there
#   c veth0 ── RPS: the SYN-ACKs coming back are processed (dropped in raw) on vCPU 1
#
# Under TCG each vCPU is a host thread and the host has 2 cores, so generator and proxy run
# side by side. trafgen fills its TX_RING and the kernel hands each frame to r's veth0,
# which queues it on vCPU 0's backlog; when vCPU 0 cannot take more, the backlog refuses the
# frame (netdev_max_backlog, counted in vCPU 0's softnet_stat) and the ring offers it again.
# So the generator offers (frames handed over + frames refused) and vCPU 0 answers what it
# can: the proxy, not the generator, bounds the rate when vCPU 0 is busy all the time and
# the offered rate is at least twice the answered one (the report counts such runs).
# Nothing else runs in the guest meanwhile.
#
# Lines: "sat TARGET REP OFFERED_PPS RECEIVED_PPS ANSWERED_PPS CPU0_BUSY_PCT REFUSED_PPS
# US_PER_SYN CT_BEFORE CT_AFTER" (tests/bench/report: medians, spreads, R/S); "# ..." notes.
# Rates are over trafgen's own sending time. OFFERED: frames trafgen handed over plus those
# vCPU 0's backlog refused; RECEIVED: frames r's veth0 took; ANSWERED: SYN-ACKs that
# reached c (its veth0's rx_packets); CPU0_BUSY: system + irq + softirq share of vCPU 0;
# US_PER_SYN: vCPU 0's busy time per answered SYN; CT: r's conntrack entries before and
# after (spoofed SYNs must leave none).
. "$(dirname "$0")/../guest/topo.sh"

REPS=${BENCH_REPS:-5}
SECS=${BENCH_SAT_SECS:-4}
RULE=(--sack-perm --timestamp --wscale 7 --mss 1460)
W=/tmp/sat
mkdir -p $W

die() {
	echo "# bench sat: $*"
	exit 1
}

[ "$(nproc)" -ge 2 ] || die "needs 2 vCPUs, has $(nproc)"
command -v trafgen >/dev/null || die "no trafgen (Debian's netsniff-ng)"
topo_up
modprobe ipt_SYNPROXY
modprobe rsynproxy
# Answers to the spoofed sources go back to c, whose MAC r knows without asking; c drops
# them in its raw table (the bench kernel has no tc ingress).
inns r ip route add 10.3.0.0/16 via 10.0.1.99
inns r ip neigh replace 10.0.1.99 lladdr 02:00:00:00:01:99 dev veth0 nud permanent
inns c iptables -t raw -A PREROUTING -i veth0 -j DROP
inns r sh -c 'echo 1 >/sys/class/net/veth0/queues/rx-0/rps_cpus'
# trafgen's frames stay charged to its socket while vCPU 0's backlog holds them: with the
# default send buffer its ring flush fails with EAGAIN (and trafgen stops). Not namespaced.
sysctl -qw net.core.wmem_max=67108864 net.core.wmem_default=67108864
# trafgen flushes its ring in bursts of thousands of frames: a backlog that holds one burst
# keeps vCPU 0 fed between flushes (the default 1000 leaves it idle while the ring refills).
sysctl -qw net.core.netdev_max_backlog=${BENCH_SAT_BACKLOG:-16384}
inns c sh -c 'echo 2 >/sys/class/net/veth0/queues/rx-0/rps_cpus'

# One packet, sent from vCPU 1 only (trafgen's cpu(1) block; its CPU 0 process has none).
cat >$W/syn.cfg <<-'EOF'
	cpu(1): {
	  0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
	  0x02, 0x00, 0x00, 0x00, 0x01, 0x99,
	  0x08, 0x00,
	  0x45, 0x00, const16(44), drnd(2), 0x40, 0x00, 64, 6, csumip(14, 33),
	  10, 3, drnd(), drnd(),
	  10, 0, 2, 99,
	  drnd(2), const16(8090), drnd(4), const32(0), 0x60, 0x02, const16(64240), csumtcp(14, 34), const16(0),
	  0x02, 0x04, 0x05, 0xb4,
	}
EOF

# snap: NS_TIME R_RX C_RX CPU0_DROPS CPU0_BUSY CPU0_TOTAL RSYN SSYN CT (jiffies for CPU0)
snap() {
	local rx crx drops busy total ct rs ss
	local -a c
	rx=$(inns r cat /sys/class/net/veth0/statistics/rx_packets)
	crx=$(inns c cat /sys/class/net/veth0/statistics/rx_packets)
	read -r -a c < <(head -n 1 /proc/net/softnet_stat)
	drops=$((16#${c[1]}))
	read -r -a c < <(grep '^cpu0 ' /proc/stat)
	# user nice system idle iowait irq softirq steal
	busy=$((c[3] + c[6] + c[7]))
	total=$((c[1] + c[2] + c[3] + c[4] + c[5] + c[6] + c[7] + c[8]))
	rs=$(stat_sum r rsynproxy 2>/dev/null | cut -d' ' -f1)
	ss=$(stat_sum r synproxy 2>/dev/null | cut -d' ' -f1)
	ct=$(inns r cat /proc/sys/net/netfilter/nf_conntrack_count)
	echo "$(date +%s%N) $rx $crx $drops $busy $total ${rs:-0} ${ss:-0} $ct"
}

run() { # TARGET REP
	local tg=$1 rep=$2 out n secs
	if [ "$tg" = drop ]; then
		# The generator's capacity: r drops every frame in its raw table, so vCPU 0 does no
		# more than receive it.
		proxy_flush
		inns r iptables -t raw -A PREROUTING -i veth0 -j DROP
	else
		proxy_rules 4 forward "$tg" "${RULE[@]}"
	fi
	inns r conntrack -F >/dev/null 2>&1 || true
	local -a a b
	a=($(snap))
	# trafgen counts what it sent and for how long; SIGINT ends it and prints both. It writes
	# a temporary file into its working directory (the guest's root is read-only).
	cd $W
	inns c timeout -s INT "$SECS" trafgen --no-sock-mem -Q -P 2 -i $W/syn.cfg -o veth0 >$W/trafgen.$tg.$rep 2>&1 || true
	sleep 1 # what vCPU 0 still holds drains
	b=($(snap))
	out=$(tr -d "\r" <$W/trafgen.$tg.$rep)
	n=$(awk '$2 == "packets" && $3 == "outgoing" { print $1 }' <<<"$out")
	secs=$(awk '/usec on CPU1/ { print $1 + $3 / 1e6 }' <<<"$out")
	[ -n "$n" ] && [ -n "$secs" ] || die "trafgen printed no statistics: $(tail -n 5 <<<"$out")"
	local syn col=6
	[ "$tg" = SYNPROXY ] && col=7
	[ "$tg" = drop ] && col=1 # (r's received count: no target answers)
	syn=$((b[col] - a[col]))
	awk -v tg="$tg" -v rep="$rep" -v n="$n" -v secs="$secs" -v rx=$((b[1] - a[1])) \
		-v ans=$((b[2] - a[2])) -v drops=$((b[3] - a[3])) -v busy=$((b[4] - a[4])) -v total=$((b[5] - a[5])) \
		-v syn="$syn" -v ct0="${a[8]}" -v ct1="${b[8]}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		# Rates over the generator s own sending time: the drain second adds no frames.
		printf "sat %s %d %.0f %.0f %.0f %.1f %.0f %.1f %d %d\n", tg, rep, (n + drops) / secs, rx / secs, ans / secs,
			total ? 100 * busy / total : 0, drops / secs, ans ? busy / hz * 1e6 / ans : 0, ct0, ct1
		printf "# sat %s rep %d: %d frames in %.2f s by trafgen, %d received by r, %d answered, %d syn_received, %d refused by vCPU 0 s backlog (offered again)\n",
			tg, rep, n, secs, rx, ans, syn, drops
	}'
}

echo "# sat: $(nproc) vCPUs, $SECS s per run, $REPS repetitions, kernel $(uname -r)"
for rep in $(seq 1 "$REPS"); do
	if [ $((rep % 2)) = 1 ]; then order="RSYNPROXY SYNPROXY"; else order="SYNPROXY RSYNPROXY"; fi
	for tg in $order drop; do run "$tg" "$rep"; done
done
proxy_flush
