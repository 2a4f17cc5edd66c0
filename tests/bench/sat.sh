#!/bin/bash
# `make bench`, guest part "sat": one proxy vCPU saturated by a generator on the guest's other
# vCPUs (issue #11 item 2, "off the proxy's CPUs"), RSYNPROXY and SYNPROXY in one boot of the
# non-debug bench kernel (3 vCPUs in `make bench`: BENCH_SAT_VCPUS).
#
#   c veth0 ── trafgen on vCPUs 1..N-1, spoofed SYNs (10.3.0.0/16, random ports and ISNs,
#              MSS), prepared beforehand
#   r veth0 ── RPS: every frame from c is processed on vCPU 0, the proxy's; r answers there
#   c veth0 ── RPS: the SYN-ACKs coming back are processed (dropped in raw) on vCPUs 1..N-1
#
# Under TCG each vCPU is a host thread. With 2 vCPUs on a 2-core host, one generator vCPU
# sends only about 1.3 x what a proxy vCPU answers; with 3, the host shares its 2 cores
# among 2 generator vCPUs and the proxy's, and the generator offers about 3 x. trafgen fills
# its TX_RING and the kernel hands each frame to r's veth0, which queues it on vCPU 0's
# backlog; when vCPU 0 cannot take more, the backlog refuses the frame (netdev_max_backlog,
# counted in vCPU 0's softnet_stat) and the ring offers it again. So the generator offers
# (frames taken + frames refused) and vCPU 0 answers what it can: the proxy, not the
# generator, bounds the rate when vCPU 0 is busy all the time and the offered rate is at
# least twice the answered one (the report counts such runs). This script and its
# measurements run off vCPU 0; nothing else runs in the guest meanwhile.
#
# Lines: "sat TARGET REP OFFERED_PPS RECEIVED_PPS ANSWERED_PPS CPU0_BUSY_PCT REFUSED_PPS
# US_PER_SYN CT_BEFORE CT_AFTER" (tests/bench/report: medians, spreads, R/S); "# ..." notes.
# Everything but CT is measured over a window of BENCH_SAT_SECS seconds while trafgen sends
# (from its first frames on, its start excluded). OFFERED: frames r's veth0 took plus those
# vCPU 0's backlog refused; RECEIVED: frames r's veth0 took; ANSWERED: SYN-ACKs that
# reached c (its veth0's rx_packets); CPU0_BUSY: system + irq + softirq share of vCPU 0;
# US_PER_SYN: vCPU 0's busy time per answered SYN (under TCG with more vCPUs than host cores
# it includes the time the host ran another vCPU: compare targets, not absolute values);
# CT: r's conntrack entries before and after the run (spoofed SYNs must leave none).
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

# vCPU 0 proxies; vCPUs 1..GEN generate (all the others).
NCPU=$(nproc)
GEN=$((NCPU - 1))
[ "$GEN" -ge 1 ] || die "needs 2 vCPUs or more, has $(nproc)"
# This script and what it starts (the measurements, the frames' generation) stay off vCPU 0.
taskset -pc 1-"$GEN" $$ >/dev/null
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
inns c sh -c "printf %x $(((1 << (GEN + 1)) - 2)) >/sys/class/net/veth0/queues/rx-0/rps_cpus"

# The frames, sent from vCPU 1 only (trafgen's cpu(1) blocks; its CPU 0 process has none):
# BENCH_SAT_FRAMES spoofed SYNs (random source in 10.3.0.0/16, port, IP id and ISN; MSS
# 1460), built and checksummed here beforehand so that trafgen only copies them into its
# ring: computing random fields and checksums per frame (trafgen's drnd() and csum*())
# cost vCPU 1 about as much as a proxied SYN costs vCPU 0 under TCG. The proxies keep no
# state for a SYN, so the frames repeating every BENCH_SAT_FRAMES changes nothing for them.
python3 - "${BENCH_SAT_FRAMES:-4096}" "$GEN" >$W/syn.cfg <<'PY'
import random, struct, sys

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

rng = random.Random(11)
dst = bytes([10, 0, 2, 99])
for _ in range(int(sys.argv[1])):
    src = bytes([10, 3, rng.randrange(256), rng.randrange(256)])
    tcp = struct.pack("!HHIIBBHHH", rng.randrange(1024, 65536), 8090, rng.getrandbits(32), 0,
                      0x60, 0x02, 64240, 0, 0) + bytes([2, 4, 0x05, 0xb4])
    tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), rng.randrange(65536), 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    frame = bytes.fromhex("020000000101" "020000000199" "0800") + ip + tcp
    gen = int(sys.argv[2])
    print(f"cpu({'1' if gen == 1 else f'1-{gen}'}): {{", ", ".join(f"0x{x:02x}" for x in frame), "}")
PY

# Processes that only hold r's and c's namespaces, so that one `awk` can read every
# counter through /proc/PID/net (a snapshot taken in one go, not one `ip netns exec` each).
ip netns exec r sleep 1000000 &
RPID=$!
ip netns exec c sleep 1000000 &
CPID=$!
trap 'kill $RPID $CPID 2>/dev/null' EXIT

# snap: NS_TIME R_RX C_RX CPU0_DROPS CPU0_BUSY CPU0_TOTAL RSYN SSYN CT (jiffies for CPU0)
snap() {
	local ct
	ct=$(inns r cat /proc/sys/net/netfilter/nf_conntrack_count)
	awk -v ct="$ct" -v rdev=/proc/$RPID/net/dev -v cdev=/proc/$CPID/net/dev \
		-v rs=/proc/$RPID/net/stat/rsynproxy -v ss=/proc/$RPID/net/stat/synproxy '
	function hex(s,  i, n) {
		n = 0
		s = tolower(s)
		for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return n
	}
	function rx(line,  f) { sub(/^ *veth0: */, "", line); split(line, f, " "); return f[2] }
	FILENAME == rdev && /veth0:/ { rrx = rx($0) }
	FILENAME == cdev && /veth0:/ { crx = rx($0) }
	FILENAME == "/proc/net/softnet_stat" && FNR == 1 { drops = hex($2) }
	# user nice system idle iowait irq softirq steal
	FILENAME == "/proc/stat" && $1 == "cpu0" { busy = $4 + $7 + $8; total = $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }
	FILENAME == rs && FNR > 1 { rsyn += hex($2) }
	FILENAME == ss && FNR > 1 { ssyn += hex($2) }
	END {
		"date +%s%N" | getline now
		printf "%s %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n", now, rrx, crx, drops, busy, total, rsyn, ssyn, ct
	}' /proc/$RPID/net/dev /proc/$CPID/net/dev /proc/net/softnet_stat /proc/stat \
		/proc/$RPID/net/stat/rsynproxy /proc/$RPID/net/stat/synproxy
}

run() { # TARGET REP
	local tg=$1 rep=$2 out n
	if [ "$tg" = drop ]; then
		# The generator's capacity: r drops every frame in its raw table, so vCPU 0 does no
		# more than receive it.
		proxy_flush
		inns r iptables -t raw -A PREROUTING -i veth0 -j DROP
	else
		proxy_rules 4 forward "$tg" "${RULE[@]}"
	fi
	inns r conntrack -F >/dev/null 2>&1 || true
	local -a z a b e
	z=($(snap))
	# trafgen counts what it sent and for how long; SIGINT ends it and prints both. It writes
	# a temporary file into its working directory (the guest's root is read-only).
	cd $W
	inns c timeout -s INT $((SECS + 60)) trafgen --no-sock-mem -Q -P $((GEN + 1)) -i $W/syn.cfg -o veth0 >$W/trafgen.$tg.$rep 2>&1 &
	local tpid=$!
	# The window: SECS seconds from the first frames on (trafgen parses its configuration
	# first), past the start.
	local i
	for i in $(seq 600); do
		[ "$(inns r cat /sys/class/net/veth0/statistics/rx_packets)" -gt "${z[1]}" ] && break
		sleep 0.1
	done
	sleep 0.3
	a=($(snap))
	sleep "$SECS"
	b=($(snap))
	pkill -INT -x trafgen
	wait $tpid
	sleep 1 # what vCPU 0 still holds drains
	e=($(snap))
	out=$(tr -d "\r" <$W/trafgen.$tg.$rep)
	n=$(awk '$2 == "packets" && $3 == "outgoing" { print $1 }' <<<"$out")
	[ -n "$n" ] || die "trafgen printed no statistics: $(tail -n 5 <<<"$out")"
	local syn col=6
	[ "$tg" = SYNPROXY ] && col=7
	[ "$tg" = drop ] && col=1 # (r's received count: no target answers)
	syn=$((e[col] - z[col]))
	awk -v tg="$tg" -v rep="$rep" -v n="$n" -v ns=$((b[0] - a[0])) -v rx=$((b[1] - a[1])) \
		-v ans=$((b[2] - a[2])) -v drops=$((b[3] - a[3])) -v busy=$((b[4] - a[4])) -v total=$((b[5] - a[5])) \
		-v syn="$syn" -v ct0="${z[8]}" -v ct1="${e[8]}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		# Every frame trafgen hands over is either taken by r or refused by vCPU 0 s backlog.
		secs = ns / 1e9
		printf "sat %s %d %.0f %.0f %.0f %.1f %.0f %.1f %d %d\n", tg, rep, (rx + drops) / secs, rx / secs, ans / secs,
			total ? 100 * busy / total : 0, drops / secs, ans ? busy / hz * 1e6 / ans : 0, ct0, ct1
		printf "# sat %s rep %d: %.2f s window: %d received by r, %d answered, %d refused by vCPU 0 s backlog (offered again); whole run: %d frames by trafgen, %d syn_received\n",
			tg, rep, secs, rx, ans, drops, n, syn
	}'
}

echo "# sat: $NCPU vCPUs, $SECS s per run, $REPS repetitions, kernel $(uname -r)"
for rep in $(seq 1 "$REPS"); do
	if [ $((rep % 2)) = 1 ]; then order="RSYNPROXY SYNPROXY"; else order="SYNPROXY RSYNPROXY"; fi
	for tg in $order drop; do run "$tg" "$rep"; done
done
proxy_flush
