#!/bin/bash
# Teardown: namespaces that die with rules and proxied connections, hooks that follow the
# rules (`nft list hooks`), module unload after all of it; and the conntrack entry the
# SYN-ACK carries. Each case runs for RSYNPROXY and, side by side, the C SYNPROXY.
#
# Why: the iptables and nf_tables pernet exits destroy the rules they still hold after our
# own pernet exit ran (exits run in reverse registration order), so the per-namespace state
# must outlive net_exit until the last rule's destroy (rust/pernet.rs). A use of dropped state
# there is a double free or a use after free that the debug kernel turns into a panic; a hook
# left registered is a kmemleak report (health.sh) or a count that never returns to zero here.
. "$(dirname "$0")/topo.sh"

OPTS=(--sack-perm --timestamp --wscale 7 --mss 1460)
PORT=9000

# A TCP peer that stays connected: `server ADDR PORT` echoes on every connection it accepts;
# `idle ADDR PORT` and `stream ADDR PORT` connect, check one echoed round trip, print "up",
# then hold the connection idle or keep sending through it until killed.
PEER='
import socket, sys, threading
mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
if mode == "server":
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(16)
    print("listening", flush=True)
    def echo(s):
        try:
            while (d := s.recv(65536)):
                s.sendall(d)
        except OSError:
            pass
    while True:
        s, _ = ls.accept()
        threading.Thread(target=echo, args=(s,), daemon=True).start()
s = socket.create_connection((addr, port), timeout=20)
msg = bytes(range(256)) * 16
s.sendall(msg)
got = b""
while len(got) < len(msg):
    d = s.recv(len(msg) - len(got))
    if not d:
        sys.exit("closed during the first round trip")
    got += d
if got != msg:
    sys.exit("echo differs")
print("up", flush=True)
s.settimeout(None)
if mode == "idle":
    threading.Event().wait()
try:
    while True:
        s.sendall(msg)
        s.recv(65536)
except OSError:
    threading.Event().wait()
'

peer() { # NS MODE ADDR PORT OUTFILE: start in the background, pid tracked, in $PEER_PID
	ip netns exec "$1" python3 -c "$PEER" "$2" "$3" "$4" >"$5" 2>&1 &
	PEER_PID=$!
	bg_track $PEER_PID
}

# The rules of r for TARGET: IPv4 with iptables-nft, IPv6 with ip6tables-legacy, forward mode.
teardown_rules() {
	local tg=$1 ipt
	for ipt in iptables-nft ip6tables-legacy; do
		inns r $ipt -t raw -A PREROUTING -i veth0 -p tcp -m tcp --syn -j CT --notrack
		inns r $ipt -A FORWARD -i veth0 -p tcp -m state --state INVALID,UNTRACKED -j "$tg" "${OPTS[@]}"
		inns r $ipt -A FORWARD -i veth0 -m state --state INVALID -j DROP
	done
}

# --- hooks follow the rules --------------------------------------------------------------

# Namespace "keep" lives through the teardown cases below, with rules of both families.
test_hooks_follow_rules() {
	netns keep
	expect_hooks keep 0 "no rule yet"
	inns keep iptables-nft -A INPUT -p tcp -j RSYNPROXY "${OPTS[@]}"
	expect_hooks keep 2 "one IPv4 rule (LOCAL_IN and POST_ROUTING)"
	inns keep iptables-nft -A INPUT -p tcp --dport 80 -j RSYNPROXY "${OPTS[@]}"
	expect_hooks keep 2 "two IPv4 rules"
	inns keep ip6tables-legacy -A INPUT -p tcp -j RSYNPROXY "${OPTS[@]}"
	expect_hooks keep 4 "two IPv4 rules and one IPv6 rule"
	inns keep iptables-nft -D INPUT -p tcp -j RSYNPROXY "${OPTS[@]}"
	expect_hooks keep 4 "one IPv4 rule deleted of two"
	inns keep ip6tables-legacy -F INPUT
	expect_hooks keep 2 "the IPv6 rule deleted"
	inns keep ip6tables-legacy -A INPUT -p tcp -j RSYNPROXY "${OPTS[@]}"
	expect_hooks keep 4 "an IPv6 rule again"
	# Another namespace's hooks are its own.
	netns hk0
	expect_hooks hk0 0 "a namespace without rules"
	ip netns del hk0
	[ "$(hooks_of keep nf_synproxy_core)" = 0 ] || fail "SYNPROXY hooks in keep"
	local out
	out=$(inns keep cat /proc/net/stat/rsynproxy)
	[ -n "$out" ] || fail "no /proc/net/stat/rsynproxy in keep"
}

# --- a namespace deleted with rules and established connections ----------------------------

# teardown TARGET MODULE...: topology with TARGET rules for both families in r and two
# proxied connections per family held open through r (one idle, one sending), then
# `ip netns del r`; the namespace's cleanup must destroy the rules (each holds a reference on
# MODULE, so the counts come back) without a splat.
test_teardown() {
	local tg=$1 m n
	shift
	topo_up
	local -A base
	for m in "$@"; do
		modprobe "$m"
		base[$m]=$(refcnt "$m")
	done
	teardown_rules "$tg"
	for m in "$@"; do
		n=$(refcnt "$m")
		[ "$n" -gt "${base[$m]}" ] || fail "$m: rules in r hold no module reference ($n, before ${base[$m]})"
	done
	if [ "$tg" = RSYNPROXY ]; then
		expect_hooks r 4 "rules of both families in r"
	else
		expect_hooks r 4 "rules of both families in r" nf_synproxy_core
		expect_hooks r 0 "SYNPROXY rules only in r"
	fi
	local f dst before after p
	before=$(stat_sum r "$(stat_file "$tg")")
	for f in 4 6; do
		dst=$(addr $f s)
		peer s server "$dst" $PORT /tmp/td.srv$f
		wait_for grep -q listening /tmp/td.srv$f || fail "server $dst: $(cat /tmp/td.srv$f)"
		for p in idle stream; do
			peer c $p "$dst" $PORT /tmp/td.$p$f
			wait_for grep -q up /tmp/td.$p$f || fail "$p client to $dst: $(cat /tmp/td.$p$f)"
		done
	done
	after=$(stat_sum r "$(stat_file "$tg")")
	local -a d=($(stat_delta "$before" "$after"))
	[ "${d[2]}" = 4 ] || fail "$tg: cookie_valid went up by ${d[2]}, want 4 (four proxied connections)"
	local est
	est=$(inns r cat /proc/net/nf_conntrack | grep -c "ESTABLISHED .*dport=$PORT " || true)
	[ "$est" = 4 ] || fail "$est established entries for port $PORT in r, want 4: $(inns r cat /proc/net/nf_conntrack)"
	ip netns del r
	# cleanup_net runs from a workqueue: the rules are gone when the module references are.
	local i
	for m in "$@"; do
		for i in $(seq 600); do
			refcnt_is "$m" "${base[$m]}" && break
			sleep 0.1
		done
		refcnt_is "$m" "${base[$m]}" ||
			fail "$m: $(refcnt "$m") module references a minute after ip netns del r, want ${base[$m]}"
	done
	! ip netns list | grep -qw r || fail "ip netns still lists r"
	expect_hooks keep 4 "the surviving namespace after r's teardown"
	local out
	out=$(inns keep cat /proc/net/stat/rsynproxy)
	[ "$(wc -l <<<"$out")" -ge 2 ] || fail "keep's proc file after r's teardown: $out"
}

# --- the SYN-ACK's conntrack entry ---------------------------------------------------------

# ct_invalid NS: conntrack's `invalid` counter of NS summed over CPUs.
ct_invalid() {
	local text line sum=0 n=0
	text=$(inns "$1" cat /proc/net/stat/nf_conntrack)
	local -a col hdr=($(head -n 1 <<<"$text"))
	[ "${hdr[4]}" = invalid ] || fail "unexpected /proc/net/stat/nf_conntrack header: ${hdr[*]}"
	while read -r line; do
		col=($line)
		sum=$((sum + 16#${col[4]}))
		n=$((n + 1))
	done < <(tail -n +2 <<<"$text")
	[ $n -gt 0 ] || fail "no CPU line in /proc/net/stat/nf_conntrack"
	echo $sum
}

N=20

# synack_ct FAMILY TARGET tracked|untracked: N spoofed SYNs through r (the SYN-ACKs go back
# to addresses nobody has); prints "syn=… invalid=…": the SYN counter delta and how many
# packets conntrack in r found invalid meanwhile.
synack_ct() {
	local f=$1 tg=$2 mode=$3 ipt dst net before after i0 i1
	ipt=$(ipt_of "$f")
	dst=$(addr "$f" s)
	net=10.0.3.0/24
	[ "$f" = 4 ] || net=fd00:3::/64
	proxy_flush
	if [ "$mode" = untracked ]; then
		proxy_rules "$f" forward "$tg" "${OPTS[@]}"
	else
		# No notrack: the SYN has an entry (NEW, unconfirmed) when it reaches the target.
		inns r "$ipt" -A FORWARD -i veth0 -p tcp -m tcp --syn -j "$tg" "${OPTS[@]}"
	fi
	before=$(stat_sum r "$(stat_file "$tg")")
	i0=$(ct_invalid r)
	inns c python3 "$TOOLS/rawtcp.py" flood --src-net $net --dst "$dst" --dport $PORT --count $N \
		--mss 1460 --sackperm --ts --wscale 7 >/tmp/sc.out 2>&1 || fail "flood: $(cat /tmp/sc.out)"
	sleep 0.5
	after=$(stat_sum r "$(stat_file "$tg")")
	i1=$(ct_invalid r)
	local -a d=($(stat_delta "$before" "$after"))
	echo "syn=${d[0]} invalid=$((i1 - i0))"
}

# With a tracked SYN, C's SYN-ACK carries the SYN's entry (ESTABLISHED_REPLY): conntrack in
# OUTPUT leaves it alone. Without it, conntrack allocates an entry for every SYN-ACK, finds a
# SYN-ACK cannot open a connection and counts it invalid. An untracked SYN has no entry to
# give: SYNPROXY sends the SYN-ACK bare, and conntrack counts each as invalid (or attaches a
# stale entry: 30-fixes.sh, reconnect); RSYNPROXY sends it untracked, and conntrack passes
# it by.
test_synack_ct() { # FAMILY: the IPv4 case builds the topology, the IPv6 one reuses it
	local f=$1 r c
	[ "$f" = 6 ] && ip netns list | grep -qw r || topo_up
	modprobe ipt_SYNPROXY
	modprobe ip6t_SYNPROXY
	r=$(synack_ct "$f" RSYNPROXY tracked)
	c=$(synack_ct "$f" SYNPROXY tracked)
	expect_eq "RSYNPROXY, tracked SYNs" "$r" "syn=$N invalid=0"
	expect_eq "SYNPROXY, tracked SYNs" "$c" "syn=$N invalid=0"
	r=$(synack_ct "$f" RSYNPROXY untracked)
	c=$(synack_ct "$f" SYNPROXY untracked)
	expect_eq "RSYNPROXY, untracked SYNs" "$r" "syn=$N invalid=0"
	expect_eq "SYNPROXY, untracked SYNs" "$c" "syn=$N invalid=$N"
}

# --- the end: no rule left, no hook left, the modules unload -------------------------------

test_last_rule() {
	inns keep iptables-nft -F INPUT
	expect_hooks keep 2 "the IPv4 rules deleted"
	inns keep ip6tables-legacy -F INPUT
	expect_hooks keep 0 "the last rule deleted"
	ip netns del keep
}

test_unload() {
	local ns
	for ns in $(ip netns list | awk '{print $1}'); do ip netns del "$ns"; done
	# Rules of namespaces just deleted go away in cleanup_net, asynchronously.
	local m
	for m in rsynproxy ipt_SYNPROXY ip6t_SYNPROXY; do
		wait_for refcnt_is $m 0 || fail "$m still has $(refcnt $m) references"
	done
	rmmod rsynproxy
	! loaded rsynproxy || fail "rsynproxy is still loaded"
	rmmod ipt_SYNPROXY ip6t_SYNPROXY nf_synproxy_core
}

t "teardown: our hooks follow the rules of each family in a namespace (nft list hooks)" test_hooks_follow_rules
t "teardown: a namespace with IPv4 (nft) and IPv6 (legacy) RSYNPROXY rules and open proxied connections is deleted cleanly" \
	test_teardown RSYNPROXY rsynproxy
t "teardown: the same with SYNPROXY (C) is deleted cleanly" test_teardown SYNPROXY ipt_SYNPROXY ip6t_SYNPROXY
for f in 4 6; do
	t "IPv$f: a tracked SYN's SYN-ACK carries its entry, an untracked one's is untracked (SYNPROXY: bare, counted invalid)" \
		test_synack_ct $f
done
t "teardown: after the last rule of the surviving namespace none of our hooks remain" test_last_rule
t "teardown: rmmod rsynproxy (and the C SYNPROXY modules) succeeds once every rule is gone" test_unload
