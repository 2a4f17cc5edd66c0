#!/bin/bash
# `make bench`, guest part: the established path, connection setup and memory (issue #11
# items 4 and 5), for RSYNPROXY, the C SYNPROXY and plain conntrack forwarding (no proxy
# rule: the floor of these paths), IPv4 FORWARD, in one boot of the non-debug bench kernel.
#
# Every row prints its raw samples, one line per configuration (tests/bench/report takes
# medians and spreads): "path ROW CONFIG SAMPLE...". Repetitions alternate the order of the
# configurations (rotated each time). Client (c), proxy (r) and backend (s) share the
# guest's vCPUs: these rows compare configurations on the same work, they are not line rates.
#
# "plain" is conntrack forwarding with an INVALID drop and no proxy rule.
#
#   bulk      iperf3, $STREAMS parallel streams for $SECS s, client to backend: Mbit/s
#   cps       wrk with "Connection: close" (a new connection per request) from $CONNS
#             concurrent connections for $SECS s to nginx on the backend: connections/s
#   cpserr    wrk's socket errors and non-2xx answers in that run (must stay 0)
#   cpssyn    proxies only: client SYNs per valid cookie in that run (above 1: SYNs resent)
#   cpsinv    proxies only: invalid cookies in that run
#   mem       slab bytes per connection held open ($HOLD connections; the whole kernel's
#             slab growth, sockets at both ends included, over plain forwarding's baseline)
#   ctobj     the size of one nf_conntrack object (slab)
#   modsize   module core size in bytes (RSYNPROXY: rsynproxy; SYNPROXY: nf_synproxy_core +
#             ipt_SYNPROXY + ip6t_SYNPROXY)
. "$(dirname "$0")/../guest/topo.sh"

REPS=${BENCH_REPS:-5}
SECS=${BENCH_SECS:-8}
STREAMS=${BENCH_STREAMS:-4}
CONNS=${BENCH_CONNS:-32}
HOLD=${BENCH_HOLD:-400}
RULE=(--sack-perm --timestamp --wscale 7 --mss 1460)
DST=10.0.2.99
NGINX=$RSYNPROXY_TOP/build/bench-tools/usr/sbin/nginx
CONFIGS=(RSYNPROXY SYNPROXY plain)

die() {
	echo "# bench path: $*"
	exit 1
}

topo_up
modprobe ipt_SYNPROXY
modprobe ip6t_SYNPROXY
modprobe rsynproxy
# The table's size is the initial namespace's setting.
sysctl -qw net.netfilter.nf_conntrack_max=262144
# Connection: close makes the backend close first: its TIME_WAIT sockets recycle nothing the
# client needs; the client's ports come from a wide range.
inns c sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
inns s sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096

# configure CONFIG: the proxy recipe for RSYNPROXY or SYNPROXY; for plain, conntrack
# forwarding without a proxy (a state rule keeps conntrack's hooks registered in r: without
# any user they are not, and forwarding would be stateless).
configure() { # CONFIG
	if [ "$1" = plain ]; then
		proxy_flush
		inns r iptables -A FORWARD -i veth0 -m state --state INVALID -j DROP
	else
		proxy_rules 4 forward "$1" "${RULE[@]}"
	fi
	inns r conntrack -F >/dev/null 2>&1 || true
}

# rotation REP: the configurations in the order of repetition REP (rotated by one each time).
rotation() {
	local i n=${#CONFIGS[@]}
	for i in $(seq 0 $((n - 1))); do echo "${CONFIGS[$(((i + $1) % n))]}"; done
}

# --- servers -------------------------------------------------------------------------------
ip netns exec s iperf3 -s -B $DST -p 9002 -D --logfile /tmp/iperf3.srv
mkdir -p /tmp/ngx
cat >/tmp/ngx/nginx.conf <<EOF
worker_processes 2;
pid /tmp/ngx/nginx.pid;
error_log /tmp/ngx/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path /tmp/ngx/body;
	proxy_temp_path /tmp/ngx/proxy;
	fastcgi_temp_path /tmp/ngx/fastcgi;
	uwsgi_temp_path /tmp/ngx/uwsgi;
	scgi_temp_path /tmp/ngx/scgi;
	server {
		listen $DST:8088 backlog=4096;
		location / { return 200 "ok\n"; }
	}
}
EOF
[ -x "$NGINX" ] || die "no nginx at $NGINX (tests/bench/run extracts it)"
ip netns exec s "$NGINX" -p /tmp/ngx -e /tmp/ngx/error.log -c /tmp/ngx/nginx.conf || die "nginx did not start: $(cat /tmp/ngx/error.log)"
wait_for inns s ss -ltn "sport = :8088" | grep -q LISTEN || true
sleep 1

bulk() {
	inns c iperf3 -c $DST -p 9002 -P "$STREAMS" -t "$SECS" -J 2>/dev/null |
		python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6, 1))'
}

# cps: "RATE ERRORS" of one wrk run.
cps() {
	local out
	out=$(inns c wrk -t 2 -c "$CONNS" -d "${SECS}s" -H "Connection: close" "http://$DST:8088/" 2>&1)
	python3 - "$out" <<-'EOF'
		import re, sys
		out = sys.argv[1]
		rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
		errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
		non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
		errs += int(non2xx.group(1)) if non2xx else 0
		print(f"{float(rate.group(1)) if rate else 0:.0f} {errs}")
	EOF
}

declare -A S
for rep in $(seq "$REPS"); do
	for cfg in $(rotation "$rep"); do
		configure "$cfg"
		v=$(bulk) || v=failed
		S[bulk.$cfg]+=" $v"
		configure "$cfg"
		[ "$cfg" = plain ] || before=$(stat_sum r "$(stat_file "$cfg")")
		read -r rate errs < <(cps) || { rate=failed errs=failed; }
		S[cps.$cfg]+=" $rate"
		S[cpserr.$cfg]+=" $errs"
		ctr=
		if [ "$cfg" != plain ]; then
			# What the proxy saw meanwhile: client SYNs per valid cookie (1: no SYN was sent
			# twice) and invalid cookies (ACKs to SYN-ACKs that did not carry their cookie).
			d=($(stat_delta "$before" "$(stat_sum r "$(stat_file "$cfg")")"))
			S[cpssyn.$cfg]+=" $(python3 -c "print(round(${d[0]} / max(${d[2]}, 1), 3))")"
			S[cpsinv.$cfg]+=" ${d[1]}"
			ctr=" counters ${d[*]}"
		fi
		echo "# rep $rep $cfg bulk $v cps $rate errors $errs$ctr"
	done
done
for row in bulk cps cpserr cpssyn cpsinv; do
	for cfg in "${CONFIGS[@]}"; do echo "path $row $cfg${S[$row.$cfg]}"; done
done

# --- memory --------------------------------------------------------------------------------
# slab_bytes: the kernel's slab memory (active objects times object size over all caches).
slab_bytes() {
	awk 'NR > 2 { s += $2 * $4 } END { printf "%d\n", s }' /proc/slabinfo
}

# hold CONFIG: open $HOLD connections through the proxy and keep them; print the slab growth
# per connection once all are established, then close them.
hold() {
	configure "$1"
	ip netns exec s python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.0.2.99", 9010)); s.listen(4096)
print("listening", flush=True)
conns = [s.accept()[0] for _ in range(int(sys.argv[1]))]
print("held", flush=True)
time.sleep(3600)' "$HOLD" >/tmp/hold.srv 2>&1 &
	local srv=$!
	wait_for grep -q listening /tmp/hold.srv
	sync
	echo 3 >/proc/sys/vm/drop_caches
	local before after
	before=$(slab_bytes)
	inns c python3 -c '
import socket, sys, time
conns = []
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("10.0.2.99", 9010), timeout=20)
    conns.append(c)
print("open", flush=True)
sys.stdin.read()' "$HOLD" </tmp/hold.fifo >/tmp/hold.cli 2>&1 &
	local cli=$!
	exec 7>/tmp/hold.fifo
	local i
	for i in $(seq 300); do grep -q held /tmp/hold.srv && grep -q open /tmp/hold.cli && break; sleep 0.2; done
	sleep 1
	after=$(slab_bytes)
	local n
	n=$(inns r conntrack -C)
	echo "# hold $1: $n conntrack entries, slab $before -> $after" >&2
	echo $(((after - before) / HOLD))
	exec 7>&-
	kill $srv $cli 2>/dev/null
	wait $srv $cli 2>/dev/null
}
mkfifo /tmp/hold.fifo
for rep in $(seq 3); do
	for cfg in $(rotation "$rep"); do
		S[mem.$cfg]+=" $(hold "$cfg")"
	done
done
for cfg in "${CONFIGS[@]}"; do echo "path mem $cfg${S[mem.$cfg]}"; done

objsize=$(awk '$1 == "nf_conntrack" { print $4 }' /proc/slabinfo)
echo "path ctobj nf_conntrack $objsize"
core() { cat "/sys/module/$1/coresize" 2>/dev/null || echo 0; }
echo "path modsize RSYNPROXY $(core rsynproxy)"
echo "path modsize SYNPROXY $(($(core nf_synproxy_core) + $(core ipt_SYNPROXY) + $(core ip6t_SYNPROXY)))"

kill "$(cat /tmp/ngx/nginx.pid)" 2>/dev/null || true
pkill iperf3 || true
