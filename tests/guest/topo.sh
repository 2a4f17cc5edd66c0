# Sourced by the data-path tests: three namespaces, client -- proxy -- backend.
#
#   c (client)  veth0 10.0.1.99 fd00:1::99 ─── veth0 10.0.1.1 fd00:1::1  r (proxy)
#   r (proxy)   veth1 10.0.2.1  fd00:2::1  ─── veth0 10.0.2.99 fd00:2::99  s (backend)
#
# The proxy forwards; "protect backend" filters FORWARD, "protect local" INPUT with the
# server in r itself. 10.0.3.0/24 and fd00:3::/64 are routed to the client for spoofed floods.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOOLS=$RSYNPROXY_TOP/tests/tools

# Each helper is meant to be called as a bare command inside a test (errexit in force): a
# helper called in a condition (`f || …`, `if f`) runs without errexit.

topo_up() {
	local n
	for n in c r s; do netns $n; done
	ip link add veth0 netns c type veth peer name veth0 netns r
	ip link add veth1 netns r type veth peer name veth0 netns s
	# One `ip -batch` per namespace: a process start costs tens of ms under TCG.
	# Fixed link-layer addresses: frames built in advance (tests/tools/fuzzwire.py) stay valid
	# across topologies.
	ip -n c -b - <<-EOF
		link set veth0 address 02:00:00:00:01:99
		addr add 10.0.1.99/24 dev veth0
		addr add fd00:1::99/64 dev veth0 nodad
		link set veth0 up
		route add default via 10.0.1.1
		route add default via fd00:1::1
	EOF
	ip -n r -b - <<-EOF
		link set veth0 address 02:00:00:00:01:01
		link set veth1 address 02:00:00:00:02:01
		addr add 10.0.1.1/24 dev veth0
		addr add fd00:1::1/64 dev veth0 nodad
		addr add 10.0.2.1/24 dev veth1
		addr add fd00:2::1/64 dev veth1 nodad
		link set veth0 up
		link set veth1 up
		route add 10.0.3.0/24 via 10.0.1.99
		route add fd00:3::/64 via fd00:1::99
	EOF
	ip -n s -b - <<-EOF
		link set veth0 address 02:00:00:00:02:99
		addr add 10.0.2.99/24 dev veth0
		addr add fd00:2::99/64 dev veth0 nodad
		link set veth0 up
		route add default via 10.0.2.1
		route add default via fd00:2::1
	EOF
	inns r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.netfilter.nf_conntrack_tcp_loose=0
	# Window scale 7 everywhere, the rules' --wscale (r is the backend in INPUT mode): it
	# follows tcp_rmem[2], whose default grows with the kernel and the guest's memory (6.12
	# with 2 GiB: 6 MiB, scale 7; Debian's 7.3: scale 8, where RSYNPROXY rightly translates
	# every backend window and the wire no longer equals SYNPROXY's). 25-mismatch.sh sets
	# other scales on purpose.
	for n in c r s; do inns $n sysctl -qw net.ipv4.tcp_rmem="4096 131072 6291456"; done
}

# addr FAMILY HOST: the address of c, r (client side) or s.
addr() {
	case $1$2 in
	4c) echo 10.0.1.99 ;; 4r) echo 10.0.1.1 ;; 4s) echo 10.0.2.99 ;;
	6c) echo fd00:1::99 ;; 6r) echo fd00:1::1 ;; 6s) echo fd00:2::99 ;;
	esac
}

ipt_of() { if [ "$1" = 6 ]; then echo ip6tables; else echo iptables; fi; }

# proxy_rules FAMILY MODE(forward|input) TARGET OPTIONS...: the recipe in r.
proxy_rules() {
	local ipt chain=FORWARD
	ipt=$(ipt_of "$1")
	[ "$2" = input ] && chain=INPUT
	local tg=$3
	shift 3
	proxy_flush
	inns r "$ipt" -t raw -A PREROUTING -i veth0 -p tcp -m tcp --syn -j CT --notrack
	inns r "$ipt" -A "$chain" -i veth0 -p tcp -m state --state INVALID,UNTRACKED -j "$tg" "$@"
	inns r "$ipt" -A "$chain" -i veth0 -m state --state INVALID -j DROP
}

proxy_flush() {
	local ipt
	for ipt in iptables ip6tables; do
		inns r $ipt -t raw -F
		inns r $ipt -F
	done
}

# stat_sum NS FILE: the five counters of /proc/net/stat/FILE summed over CPUs (hex in, decimal out).
stat_sum() {
	local -a sum=(0 0 0 0 0) col
	local text line i n=0
	text=$(inns "$1" cat "/proc/net/stat/$2")
	while read -r line; do
		col=($line)
		[ ${#col[@]} = 6 ] || fail "/proc/net/stat/$2: malformed line '$line'"
		for i in 0 1 2 3 4; do sum[i]=$((sum[i] + 16#${col[i + 1]})); done
		n=$((n + 1))
	done < <(tail -n +2 <<<"$text")
	[ $n -gt 0 ] || fail "/proc/net/stat/$2 has no CPU line"
	echo "${sum[*]}"
}

# wait_for COND...: poll a command for up to 10 s.
wait_for() {
	local i
	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# stat_delta BEFORE AFTER: per-column difference.
stat_delta() {
	local -a a=($1) b=($2)
	echo "$((b[0] - a[0])) $((b[1] - a[1])) $((b[2] - a[2])) $((b[3] - a[3])) $((b[4] - a[4]))"
}

stat_file() { if [ "$1" = RSYNPROXY ]; then echo rsynproxy; else echo synproxy; fi; }

# stop PID...: end background helpers (tcpdump, servers) that may have exited already.
stop() {
	kill "$@" 2>/dev/null || true
	wait "$@" 2>/dev/null || true
}

# bg_track PID...: stop these background processes when the test ends, failing or not (each
# test runs in its own subshell: the EXIT trap is the test's).
BG=()
bg_track() {
	BG+=("$@")
	trap 'stop "${BG[@]}"' EXIT
}

# capture NS IFACE FILE FILTER...: tcpdump in the background, its pid in $CAP_PID, once it
# has written the file header (so nothing sent after this returns is missed).
capture() {
	local ns=$1 ifc=$2 file=$3
	shift 3
	rm -f "$file"
	# --immediate-mode: libpcap otherwise hands packets over in blocks, up to a second
	# late, and a capture stopped in that second loses them. -B: an 8 MiB ring, as tcpdump
	# can fall behind a burst under TCG.
	ip netns exec "$ns" tcpdump -i "$ifc" -nn -U --immediate-mode -s 256 -B 8192 -w "$file" "$@" >/dev/null 2>&1 &
	CAP_PID=$!
	bg_track $CAP_PID
	wait_for test -s "$file" || fail "tcpdump in $ns on $ifc did not start"
}

# settle FILE...: wait until the captures stop growing (1 s without a new byte, at most
# 15 s), so that stopping tcpdump loses nothing it has yet to write.
settle() {
	local i now last=
	for i in $(seq 15); do
		now=$(stat -c %s "$@" | tr '\n' ' ')
		[ "$now" = "$last" ] && return 0
		last=$now
		sleep 1
	done
}

# wire ARGS...: tests/tools/wire.py, fatal on error.
wire() { python3 "$TOOLS/wire.py" "$@"; }

# hooks_of NS [MODULE]: how many hooks of MODULE (rsynproxy) `nft list hooks` shows in NS.
hooks_of() {
	local out
	out=$(inns "$1" nft list hooks)
	grep -c "\[${2:-rsynproxy}\]" <<<"$out" || true
}

expect_hooks() { # NS WANT WHEN [MODULE]
	local n
	n=$(hooks_of "$1" "${4:-rsynproxy}")
	[ "$n" = "$2" ] || fail "$3: $n ${4:-rsynproxy} hooks in $1, want $2; nft list hooks: $(inns "$1" nft list hooks)"
}

refcnt() { cat "/sys/module/$1/refcnt"; }
refcnt_is() { [ "$(refcnt "$1")" = "$2" ]; }

# recipe TARGET OPTIONS...: the recipe as input for iptables-restore or ip6tables-restore
# (raw and filter tables, FORWARD and INPUT from veth0).
recipe() {
	local tg=$1 chain
	shift
	printf '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n'
	printf -- '-A PREROUTING -i veth0 -p tcp -m tcp --syn -j CT --notrack\nCOMMIT\n'
	printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n'
	for chain in FORWARD INPUT; do
		printf -- '-A %s -i veth0 -p tcp -m state --state INVALID,UNTRACKED -j %s %s\n' "$chain" "$tg" "$*"
		printf -- '-A %s -i veth0 -m state --state INVALID -j DROP\n' "$chain"
	done
	printf 'COMMIT\n'
}

# proxy_rules_all TARGET OPTIONS...: the recipe in r for both families, replacing r's raw and
# filter tables (one restore per family: a process start costs much under TCG).
proxy_rules_all() {
	recipe "$@" | inns r iptables-restore
	recipe "$@" | inns r ip6tables-restore
}

# drops: frames the receive backlogs dropped, all CPUs (/proc/net/softnet_stat, column 2).
drops() {
	local -a col
	local s=0
	while read -r -a col; do s=$((s + 16#${col[1]})); done </proc/net/softnet_stat
	echo $s
}

# hold_conns DIR SPEC...: proxied connections opened by fuzzwire.py hold (SPEC is
# FAMILY:SERVER_NS:ADDRESS:PORT:COUNT) and held open until `stop $HOLDER`; their sequence
# numbers (TCP_REPAIR) in DIR/conns.json, for frames that hit them in the window.
hold_conns() {
	local dir=$1
	shift
	rm -f "$dir/ready"
	python3 "$TOOLS/fuzzwire.py" hold --out "$dir/conns.json" --ready "$dir/ready" "$@" >"$dir/hold.out" 2>&1 &
	HOLDER=$!
	bg_track $HOLDER
	wait_for test -e "$dir/ready" || fail "the held connections did not open: $(cat "$dir/hold.out")"
}

# trafgen_sndbuf: a send buffer that outlasts every frame trafgen has in flight. A veth keeps
# the sending socket's charge on the frame until the receiver frees it (skb_scrub_packet does
# not orphan it), so at full rate the proxy's backlogs (4 CPUs x netdev_max_backlog frames)
# hold more than the default 208 KiB; trafgen's TX_RING flush then gets EAGAIN and trafgen
# exits. Set once, not saved and restored around each run as trafgen's own tuning (disabled
# with --no-sock-mem) does, which two concurrent trafgens would undo under each other.
trafgen_sndbuf() {
	sysctl -qw net.core.wmem_default=$((1 << 30))
}

# trafgen_in NS ARG...: trafgen in NS, from /tmp (it writes a temporary file into the current
# directory; the guest's root is read-only), with trafgen_sndbuf.
trafgen_in() {
	local ns=$1
	shift
	trafgen_sndbuf
	(cd /tmp && ip netns exec "$ns" trafgen --no-sock-mem "$@")
}

# hostile_setup DIR: the topology, the SYNPROXY modules, an empty scratch DIR, and in $MACS
# the link-layer addresses that frames built in advance need (tests/tools/fuzzwire.py).
hostile_setup() {
	topo_up
	modprobe ipt_SYNPROXY
	modprobe ip6t_SYNPROXY
	rm -rf "$1"
	mkdir -p "$1"
	MACS="c0=$(mac c veth0),r0=$(mac r veth0),r1=$(mac r veth1),s0=$(mac s veth0)"
}

# ct_count: the entries of r's conntrack table (what conntrack -L lists).
ct_count() { inns r cat /proc/net/nf_conntrack | wc -l; }
# ct_open: the entries of r not yet closed (neither TIME_WAIT nor CLOSE).
ct_open() { inns r grep -cvE ' (TIME_WAIT|CLOSE) ' /proc/net/nf_conntrack || true; }

# only_unacked_stalls JSON: whether every failure that xfer.py flows reports (its JSON line)
# is a connection that timed out before the backend acknowledged a byte: the client got the
# cookie SYN-ACK, the backend never heard of it. For SYNPROXY that is C bug 7 (a lost
# handshake ACK) or C bug 2 (a lost backend SYN whose keep-alive C misreads), differences.md.
only_unacked_stalls() {
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
failed = d["transfers_failed"] + d["connects_attempted"] - d["connects_ok"]
sys.exit(0 if failed > 0 and d.get("stalled_unacked") == failed else 1)' "$1"
}

# ct_of_ports FILE: for each "local port N" that xfer.py names in FILE (a failed transfer),
# the proxy's conntrack entry of that connection, to stderr.
ct_of_ports() {
	local p
	for p in $(grep -oE 'local port [0-9]+' "$1" | grep -oE '[0-9]+$' | sort -u); do
		echo "conntrack, port $p: $(inns r grep -E "sport=$p " /proc/net/nf_conntrack || echo none)" >&2
	done
}

# mac NS IFACE: the interface's link-layer address.
mac() { ip -n "$1" -o link show "$2" | sed -E 's/.*link\/ether ([0-9a-f:]+).*/\1/'; }

# figure KEY=VALUE...: a line for the table of make soak ($RSYNPROXY_OUT/figures).
figure() { echo "$*" >>"$RSYNPROXY_OUT/figures"; }
