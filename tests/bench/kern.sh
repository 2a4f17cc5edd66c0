#!/bin/bash
# The per-packet cost of each path, timed in the kernel (rust/bench.rs, the bench build of the
# module: make BENCH=1): RSYNPROXY against the C SYNPROXY, IPv4 and IPv6, on prepared packets,
# plus the floor of the SYN path. Runs in the guest (tests/vm-run), on the c/r/s topology.
#
# Prints one line per row (ns per packet, integers: each run's mean; median, min, max over
# the repetitions):
#   kern PATH FAMILY R_MED R_MIN R_MAX C_MED C_MIN C_MAX FLOOR_MED FLOOR_MIN FLOOR_MAX
# PATH is syn, ack, synack or established; FLOOR fields are `-` but for syn. Other lines
# start with `#`. BENCH_N packets per path and run (default 1000), BENCH_REPS repetitions
# (default 9: a run takes seconds, and the host's noise needs the median) after an uncounted
# warm-up round; each repetition runs RSYNPROXY, SYNPROXY and the floor, in alternating order.
# Keep (BENCH_REPS + 1) * 3 * BENCH_N under 55000: the prepared connections' source ports
# (rust/bench.rs client_acks) must not come round to ones the backend still holds.
. "$(dirname "$0")/../guest/topo.sh"

N=${BENCH_N:-1000}
REPS=${BENCH_REPS:-9}
PORT=9000 # rust/bench.rs PORT
CTL=/proc/rsynproxy_bench
# The recipe's options (rust/bench.rs recipe_info); the MSS is what the backend announces on
# its 1500-byte link, or RSYNPROXY would count and log a mismatch for every connection.
RULE=(--sack-perm --timestamp --wscale 7 --mss)
OUT=/tmp/kern-bench
rm -rf $OUT
mkdir -p $OUT

die() {
	echo "# kern.sh: $*"
	exit 1
}

# ctl COMMAND: one command to the bench, in r (it acts in the writer's namespace), and its
# output (which says what failed, if it did).
ctl() {
	if ! inns r sh -c "echo '$1' > $CTL"; then
		inns r cat $CTL
		echo "# kern.sh: '$1' failed"
		return 1
	fi
	inns r cat $CTL
}

# rules TARGET: the recipe in r for both families with TARGET (DROP for the floor: conntrack
# as in the recipe, no proxy hooks), so that only TARGET's hooks are registered.
rules() {
	if [ "$1" = DROP ]; then
		proxy_rules_all DROP
	else
		recipe "$1" "${RULE[@]}" 1460 | inns r iptables-restore
		recipe "$1" "${RULE[@]}" 1440 | inns r ip6tables-restore
	fi
}

topo_up
modprobe ipt_SYNPROXY
modprobe ip6t_SYNPROXY
modprobe rsynproxy
[ -e $CTL ] || die "no $CTL: not the bench build of rsynproxy.ko (make BENCH=1)"
# The sent packets queue on the receivers' backlogs between sub-batches; each run leaves up
# to 2N entries (flushed before the next).
sysctl -qw net.core.netdev_max_backlog=100000 net.netfilter.nf_conntrack_max=1000000
inns s sysctl -qw net.ipv4.tcp_max_syn_backlog=65536 net.core.somaxconn=65536
# The client has no sockets for the prepared connections: its RSTs to the SYN-ACKs and
# window updates would close the entries the later paths need.
inns c iptables -A OUTPUT -p tcp --tcp-flags RST RST -j DROP
inns c ip6tables -A OUTPUT -p tcp --tcp-flags RST RST -j DROP

# The backend accepts every connection and holds it (no traffic after the handshake).
inns s python3 -c '
import resource, select, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
ls = []
for fam, addr in ((socket.AF_INET, "10.0.2.99"), (socket.AF_INET6, "fd00:2::99")):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(sys.argv[1])))
    s.listen(65536)
    s.setblocking(False)
    ls.append(s)
print("listening", flush=True)
held = []
while True:
    for s in select.select(ls, [], [])[0]:
        try:
            while True:
                held.append(s.accept()[0])
        except BlockingIOError:
            pass
' $PORT >$OUT/listener 2>&1 &
LISTENER=$!
trap 'kill $LISTENER 2>/dev/null' EXIT
wait_for grep -q listening $OUT/listener || die "backend listener: $(cat $OUT/listener)"

# Templates: one client SYN and one client ACK per family, stolen at FORWARD in r.
rules DROP
ctl arm >/dev/null || die "arm failed"
inns c python3 -c '
import socket
from scapy.all import IP, IPv6, TCP
port = 9000
for fam, ip, dst, mss in ((socket.AF_INET, IP(src="10.0.1.99", dst="10.0.2.99"), "10.0.2.99", 1460),
                          (socket.AF_INET6, IPv6(src="fd00:1::99", dst="fd00:2::99"), "fd00:2::99", 1440)):
    opts = [("MSS", mss), ("SAckOK", b""), ("Timestamp", (12345, 0)), ("NOP", None), ("WScale", 7)]
    syn = ip / TCP(sport=40000, dport=port, flags="S", seq=1000, window=64240, options=opts)
    ack = ip / TCP(sport=40000, dport=port, flags="A", seq=1001, ack=1, window=502,
                   options=[("NOP", None), ("NOP", None), ("Timestamp", (12346, 1))])
    s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
    if fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    for p in (syn, ack):
        s.sendto(bytes(p), (dst, 0))
' || die "sending the templates failed"
status=
for _ in $(seq 50); do
	status=$(ctl status)
	[ "$status" = "syn4 1 ack4 1 syn6 1 ack6 1" ] && break
	sleep 0.2
done
[ "$status" = "syn4 1 ack4 1 syn6 1 ack6 1" ] || die "templates not captured: $status"

# run_one TARGET PREFIX: one run of TARGET (rsynproxy, synproxy, floor) with only its rules
# in r and an empty conntrack table (no run pays for another's entries); its lines prefixed.
run_one() {
	case $1 in
	rsynproxy) rules RSYNPROXY ;;
	synproxy) rules SYNPROXY ;;
	floor) rules DROP ;;
	esac
	inns r conntrack -F >/dev/null 2>&1 || true
	ctl "run $1 $N" | sed "s/^/$2 /"
}
# BENCH_PERF=1: profile instead of timing (make bench-profile): one run of each target under
# `perf record`, the hottest symbols of each, for item 6's "where does the time go".
if [ -n "$BENCH_PERF" ]; then
	# Warm-up as below; it also lets the kernel's run-once keys (net_get_random_once in
	# cookie_hash) be patched out before anything is sampled.
	for tg in synproxy rsynproxy; do
		run_one $tg 0 >/dev/null
	done
	for tg in rsynproxy synproxy; do
		case $tg in rsynproxy) rules RSYNPROXY ;; synproxy) rules SYNPROXY ;; esac
		inns r conntrack -F >/dev/null 2>&1 || true
		perf record -q -g -m 4096 -e cpu-clock -F 2000 -o $OUT/perf.$tg -- \
			ip netns exec r sh -c "echo 'run $tg $N' > $CTL" 2>$OUT/perf.err ||
			die "perf record: $(cat $OUT/perf.err)"
		inns r cat $CTL | sed 's/^/# /'
		perf script -i $OUT/perf.$tg -F period,ip,sym 2>$OUT/perf.err | python3 "$(dirname "$0")/perf-split" $tg $N
		grep -i lost $OUT/perf.err | sed 's/^/# /'
	done
	exit 0
fi
echo "# kern.sh: N=$N per run, $REPS repetitions, $(nproc) CPU(s), kernel $(uname -r)"
# A warm-up round first, not counted: the first runs after boot grow the slab caches and the
# conntrack table for everyone after them.
for tg in synproxy rsynproxy floor; do
	run_one $tg 0 | grep -E '^0 # .*(failed|captured|translated)' >>$OUT/lines
done
for rep in $(seq "$REPS"); do
	if [ $((rep % 2)) = 1 ]; then order="rsynproxy synproxy floor"; else order="floor synproxy rsynproxy"; fi
	for tg in $order; do
		run_one $tg "$rep" >>$OUT/lines
	done
done
ctl disarm >/dev/null
proxy_flush
# The proxies' own counters in r over the whole bench (hex columns summed): cookies that
# failed or option mismatches would show here.
for f in synproxy rsynproxy rsynproxy_mismatch; do
	inns r cat /proc/net/stat/$f | python3 -c '
import sys
lines = sys.stdin.read().split("\n")
keys = lines[0].split()
sums = [0] * len(keys)
for l in lines[1:]:
    for i, v in enumerate(l.split()):
        sums[i] += int(v, 16)
print("# /proc/net/stat/" + sys.argv[1] + ": " + " ".join(f"{k}={v}" for k, v in zip(keys, sums)))
' $f
done

# The window numbers of the instruction count (part insns), and the symbols to read it with.
if [ -n "${RSYNPROXY_OUT:-}" ]; then
	grep -h '# window ' $OUT/lines >"$RSYNPROXY_OUT/windows" || true
	cat /proc/kallsyms >"$RSYNPROXY_OUT/kallsyms"
fi
grep -h '#' $OUT/lines | grep -v '# window ' | sed 's/^[0-9]* /# /' | sort | uniq -c | sed 's/^ *\([0-9]*\) # /# (x\1) /'
python3 - "$OUT/lines" <<'PY'
import statistics, sys
runs, meds = {}, {}
short = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) != 8 or f[1] == "#":
        continue
    rep, tg, path, fam, mean, ok, n, med = f
    if int(ok) < int(n):
        short.append(f"# rep {rep} {tg} {path} IPv{fam}: {ok} of {n} packets got the expected verdict")
    runs.setdefault((path, fam, tg), []).append(int(mean))
    meds.setdefault((path, fam, tg), []).append(int(med))
def cols(d, path, fam, tg):
    v = d.get((path, fam, tg))
    if not v:
        return ["-", "-", "-"]
    return [str(int(statistics.median(v))), str(min(v)), str(max(v))]
def rows(d, tag):
    for path in ("syn", "ack", "synack", "established"):
        for fam in ("4", "6"):
            print(" ".join([tag, path, fam] + cols(d, path, fam, "rsynproxy")
                           + cols(d, path, fam, "synproxy") + cols(d, path, fam, "floor")))
for line in short:
    print(line)
# The rows: each run's mean (its total time / N); median, min and max over the repetitions.
rows(runs, "kern")
# The same from each run's median sub-batch, for reference.
print("# the same columns from the median sub-batch of each run (robust to host preemption):")
rows(meds, "# kern-submed")
m = statistics.median
for path in ("syn", "ack", "synack", "established"):
    for fam in ("4", "6"):
        r, c, fl = (runs.get((path, fam, t)) for t in ("rsynproxy", "synproxy", "floor"))
        if r and c:
            s = f"# {path} IPv{fam}: RSYNPROXY/SYNPROXY {m(r) / m(c):.2f}"
            if fl:
                s += f", SYNPROXY/floor {m(c) / m(fl):.2f}, RSYNPROXY/floor {m(r) / m(fl):.2f}"
            print(s)
PY
