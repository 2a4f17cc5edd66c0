#!/bin/bash
# Guest side of tests/bench/flood (the host driver): sets up the proxy and the backend with
# the virtio-net NIC on the host's tap as the proxy's client-facing interface, then serves
# the driver's requests until told to quit.
#
#   host tap0 10.0.1.99 (namespace rsbench) ═══ virtio eth0, renamed veth0: 10.0.1.1  r (proxy)
#   r veth1 10.0.2.1 ─── veth0 10.0.2.99  s (backend: accept-and-hold :8090, iperf3 -s :5201)
#
# The NIC is renamed veth0 in r so that the recipe of tests/guest/topo.sh (`-i veth0`)
# applies unchanged. Spoofed sources (10.3.0.0/16) are routed back to the host, which drops
# the answers. RPS spreads every receive queue over all vCPUs.
#
# Control channel: the host directory shared as 9p tag "ctl" (tests/vm-run --ctl), mounted
# at /run/ctl. The driver writes req.N (one line: COMMAND ARGS), the guest answers resp.N
# (first line the status, then the output), N = 0, 1, 2 … in order; both written under a
# temporary name and renamed. Commands:
#   target TARGET [servers]  rules for RSYNPROXY, SYNPROXY, none-cookies or none-nocookies
#                            (no rules at all in r; the backend's tcp_syncookies 1 or 0;
#                            the backend keeps no TCP metrics of its peers),
#                            conntrack flushed; with "servers" the backend's servers are
#                            restarted (a flooded listener's queue is emptied)
#   snap                     one line of counters (see snap below)
#   measure SECONDS          a snap, SECONDS of sleep, a snap
#   quit
# The serving loop runs inside r: the counters are read by bash builtins, without a process
# start (which costs much under TCG while the flood takes the CPUs).
. "$(dirname "$0")/../guest/topo.sh"

CTL=/run/ctl
RULE=(--sack-perm --timestamp --wscale 7 --mss 1460)
W=/tmp/flood

setup() {
	mkdir -p $CTL $W
	mount -t 9p -o trans=virtio,version=9p2000.L ctl $CTL
	modprobe ipt_SYNPROXY
	modprobe rsynproxy || echo "no rsynproxy module: the RSYNPROXY rows will fail" >&2
	netns r
	netns s
	ip link set eth0 netns r
	ip link add veth1 netns r type veth peer name veth0 netns s
	ip -n r -b - <<-EOF
		link set eth0 name veth0
		addr add 10.0.1.1/24 dev veth0
		addr add 10.0.2.1/24 dev veth1
		link set veth0 up
		link set veth1 up
		neigh replace 10.0.1.99 lladdr 02:00:00:00:01:99 dev veth0 nud permanent
		route add 10.3.0.0/16 via 10.0.1.99
	EOF
	ip -n s -b - <<-EOF
		addr add 10.0.2.99/24 dev veth0
		link set veth0 up
		route add default via 10.0.2.1
	EOF
	inns r sysctl -qw net.ipv4.ip_forward=1 net.netfilter.nf_conntrack_tcp_loose=0
	local all q
	all=$(printf '%x' $(((1 << $(nproc)) - 1)))
	inns r sh -c "for q in /sys/class/net/veth0/queues/rx-*/rps_cpus /sys/class/net/veth1/queues/rx-*/rps_cpus; do echo $all >\$q; done"
	inns s sh -c "echo $all >/sys/class/net/veth0/queues/rx-0/rps_cpus"
	echo "vcpus=$(nproc) nic_rx_queues=$(inns r sh -c 'ls -d /sys/class/net/veth0/queues/rx-*' | wc -l) kernel=$(uname -r)" >$CTL/.ready
	mv $CTL/.ready $CTL/ready
}

SRV=()
servers() {
	local p
	for p in "${SRV[@]}"; do stop "$p"; done
	SRV=()
	rm -f $W/listen.out $W/iperf.out
	# Accept and hold each connection for 10 s (at most 500), with a listen queue of 1024
	# (xfer.py listen has 64): an application that the flood keeps off the CPU for a while
	# does not make the backend refuse. Not closed at once: the client's first byte would
	# then be answered by a RST, not acknowledged, whenever it comes after the close.
	ip netns exec s python3 -c '
import collections, socket, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("10.0.2.99", 8090))
ls.listen(1024)
print("listening", flush=True)
held = collections.deque()
while True:
    held.append((time.monotonic(), ls.accept()[0]))
    while len(held) > 500 or time.monotonic() - held[0][0] > 10:
        held.popleft()[1].close()' >$W/listen.out 2>&1 &
	SRV+=($!)
	ip netns exec s iperf3 -s -B 10.0.2.99 -p 5201 --forceflush >$W/iperf.out 2>&1 &
	SRV+=($!)
	wait_for grep -q listening $W/listen.out || { echo "the listener did not start: $(cat $W/listen.out)"; return 1; }
	wait_for grep -q listening $W/iperf.out || { echo "iperf3 -s did not start: $(cat $W/iperf.out)"; return 1; }
}

# Handlers run in the serving shell itself (the servers they start must outlive them), so
# they return a status instead of calling fail.
target() {
	local cookies=1
	nft flush ruleset || return 1
	conntrack -F >/dev/null 2>&1 || true
	case $1 in
	RSYNPROXY | SYNPROXY) recipe "$1" "${RULE[@]}" | iptables-restore || return 1 ;;
	none-cookies) ;;
	none-nocookies) cookies=0 ;;
	*) echo "unknown target $1"; return 1 ;;
	esac
	# The prober (one source address) stands for many clients the backend has never seen:
	# without cached metrics, as Linux admits a peer whose RTT it remembers past the limit
	# that keeps unknown ones out of a SYN queue three-quarters full (syncookies off).
	ip netns exec s sysctl -qw net.ipv4.tcp_syncookies=$cookies net.ipv4.tcp_no_metrics_save=1 || return 1
	ip -n s tcp_metrics flush all 2>/dev/null || true
	if [ "${2:-}" = servers ]; then servers || return 1; fi
	snap
}

# sum_syn FILE: syn_received (column 2) summed over the CPU lines of /proc/net/stat/FILE, 0
# when the file is not there.
sum_syn() {
	local -a col
	local s=0 first=1
	[ -r "/proc/net/stat/$1" ] || { echo 0; return; }
	while read -r -a col; do
		if [ $first = 1 ]; then first=0; continue; fi
		s=$((s + 16#${col[1]}))
	done <"/proc/net/stat/$1"
	echo $s
}

# snap: TIME NIC_RX NIC_RX_DROPPED NIC_TX BACKLOG_DROPS RSYNPROXY_SYN SYNPROXY_SYN CT_COUNT
# then /proc/stat's cpu line (user nice system idle iowait irq softirq steal), all in one line.
snap() {
	local t=$EPOCHREALTIME rx rxd tx bl=0 ct=0 rs s
	local -a col cpu
	read -r rx </sys/class/net/veth0/statistics/rx_packets
	read -r rxd </sys/class/net/veth0/statistics/rx_dropped
	read -r tx </sys/class/net/veth0/statistics/tx_packets
	while read -r -a col; do bl=$((bl + 16#${col[1]})); done </proc/net/softnet_stat
	[ -r /proc/sys/net/netfilter/nf_conntrack_count ] && read -r ct </proc/sys/net/netfilter/nf_conntrack_count
	rs=$(sum_syn rsynproxy)
	s=$(sum_syn synproxy)
	read -r -a cpu </proc/stat
	echo "$t $rx $rxd $tx $bl $rs $s $ct ${cpu[*]:1:8}"
}

measure() {
	snap
	sleep "$1"
	snap
}

serve() {
	local seq=0 cmd rest rc
	local -a args
	while :; do
		if [ ! -e $CTL/req.$seq ]; then
			sleep 0.1
			continue
		fi
		read -r cmd rest <$CTL/req.$seq || true
		read -r -a args <<<"$rest"
		case $cmd in
		target | snap | measure)
			"$cmd" "${args[@]}" >$W/out 2>&1
			rc=$?
			;;
		conntrack) conntrack -C >$W/out 2>&1; rc=$? ;;
		quit) echo bye >$W/out; rc=0 ;;
		*) echo "unknown command $cmd" >$W/out; rc=2 ;;
		esac
		{ echo $rc; cat $W/out; } >$CTL/.resp.$seq
		mv $CTL/.resp.$seq $CTL/resp.$seq
		seq=$((seq + 1))
		[ "$cmd" != quit ] || break
	done
	stop "${SRV[@]}"
}

if [ "${1:-}" = serve ]; then
	serve
else
	set -e
	setup
	set +e
	exec ip netns exec r bash "$0" serve
fi
