#!/bin/bash
# Churn, RSYNPROXY then SYNPROXY in the same boot: namespaces with rules of both families and
# open proxied connections deleted in a loop; rules replaced under traffic (iptables-nft-restore,
# iptables-legacy-restore, -I/-D); the module unloaded with connections in flight and
# reloaded in a loop; the conntrack table flushed mid-transfer. The debug kernel reports any
# fault (the console is scanned, kmemleak runs at the end of the boot); module references and
# `nft list hooks` must come back to zero.
# HOSTILE_CHURN_CYCLES: namespace cycles per target (make soak: 500); HOSTILE_CHURN_ROUNDS:
# rule replacements and unload/reload rounds.
. "$(dirname "$0")/../topo.sh"

CYCLES=${HOSTILE_CHURN_CYCLES:-3}
ROUNDS=${HOSTILE_CHURN_ROUNDS:-1}
W=/tmp/hostile/churn
RULE=(--sack-perm --timestamp --wscale 7 --mss 1460)

modules_of() { if [ "$1" = RSYNPROXY ]; then echo rsynproxy; else echo ipt_SYNPROXY ip6t_SYNPROXY nf_synproxy_core; fi; }
# The modules an IPv4 rule of TARGET keeps in use.
in_use_by_ipv4() { if [ "$1" = RSYNPROXY ]; then echo rsynproxy; else echo ipt_SYNPROXY nf_synproxy_core; fi; }

# refs_back MODULE BASE: wait (cleanup_net is a workqueue) until MODULE has BASE references.
refs_back() {
	local i
	for i in $(seq 600); do
		refcnt_is "$1" "$2" && return 0
		sleep 0.1
	done
	fail "$1: $(refcnt "$1") references a minute later, want $2"
}

# hold: proxied connections of both families, forward and input, open until `stop $HOLDER`.
hold() {
	hold_conns "$W" 4:s:10.0.2.99:8083:2 6:s:fd00:2::99:8083:2 4:r:10.0.1.1:8084:1 6:r:fd00:1::1:8084:1
}

ns_churn() {
	local tg=$1 m i est
	local -A base
	mkdir -p "$W"
	modprobe ipt_SYNPROXY
	modprobe ip6t_SYNPROXY
	topo_up
	proxy_rules_all "$tg" "${RULE[@]}" # loads rsynproxy
	proxy_flush
	for m in $(modules_of "$tg"); do base[$m]=$(refcnt "$m"); done
	for i in $(seq "$CYCLES"); do
		topo_up
		proxy_rules_all "$tg" "${RULE[@]}"
		hold
		est=$(inns r cat /proc/net/nf_conntrack | grep -c "ESTABLISHED.*dport=808[34] " || true)
		[ "$est" = 6 ] || fail "cycle $i: $est established proxied entries in r, want 6"
		# The proxy's namespace goes first, with its rules and the live entries.
		ip netns del r
		stop $HOLDER
		ip netns del c
		ip netns del s
	done
	for m in $(modules_of "$tg"); do refs_back "$m" "${base[$m]}"; done
	figure "churn-netns $tg cycles=$CYCLES conns=$((6 * CYCLES))"
}

# flows_start PORT SECONDS: concurrent checked transfers c -> s:PORT (forward, IPv4) and a
# prober making new connections, until $W/stop; flows_stop checks them.
flows_start() {
	rm -f "$W/stop"
	inns c python3 "$TOOLS/xfer.py" flows 10.0.2.99 "$1" --flows 4 --bytes 300000 --loop-until "$W/stop" \
		--timeout "${2:-60}" >"$W/flows.out" 2>&1 &
	FLOWS=$!
	bg_track $FLOWS
	sleep 2
}
# flows_stop TARGET: SYNPROXY's connections that time out before the backend acknowledged a
# byte are C bugs 7 and 2 (differences.md), counted in the figures; any other failure fails
# either target.
flows_stop() {
	touch "$W/stop"
	FLOWS_OUT=
	if ! wait "$FLOWS"; then
		FLOWS_OUT=$(head -n 1 "$W/flows.out")
		[ "$1" = SYNPROXY ] && only_unacked_stalls "$FLOWS_OUT" ||
			fail "transfers through the proxy failed: $(cat "$W/flows.out")"
	fi
	FLOWS_OUT=$(head -n 1 "$W/flows.out")
}

legacy_flush() {
	local ipt
	for ipt in iptables-legacy ip6tables-legacy; do
		inns r $ipt -t raw -F
		inns r $ipt -F
	done
}

# fresh_servers ADDR:PORT...: new namespaces, with a checked-transfer server in s on each
# address (stopped when the test ends).
fresh_servers() {
	local a
	mkdir -p "$W"
	topo_up
	for a in "$@"; do
		ip netns exec s python3 "$TOOLS/xfer.py" server "${a%:*}" "${a##*:}" --parallel >/dev/null 2>&1 &
		bg_track $!
	done
}

rules_replace() {
	local tg=$1 i
	fresh_servers 10.0.2.99:8085
	recipe "$tg" "${RULE[@]}" >"$W/rules"
	inns r iptables-nft-restore <"$W/rules"
	flows_start 8085
	for i in $(seq "$ROUNDS"); do
		# Atomic replacement, each backend in turn: the other is emptied once the new one is in.
		inns r iptables-nft-restore <"$W/rules"
		inns r iptables-legacy-restore <"$W/rules"
		inns r iptables-nft -t raw -F
		inns r iptables-nft -F
		inns r iptables-legacy-restore <"$W/rules"
		inns r iptables-nft-restore <"$W/rules"
		legacy_flush
		# One rule at a time: the new one in first, then the old one out; then in place.
		inns r iptables -I FORWARD 1 -i veth0 -p tcp -m state --state INVALID,UNTRACKED -j "$tg" "${RULE[@]}"
		inns r iptables -D FORWARD 2
		inns r iptables -R FORWARD 1 -i veth0 -p tcp -m state --state INVALID,UNTRACKED -j "$tg" "${RULE[@]}"
		sleep 1
	done
	flows_stop "$tg"
	figure "churn-rules $tg rounds=$ROUNDS replacements=$((7 * ROUNDS)) flows=$(tr -d ' ' <<<"$FLOWS_OUT" | cut -c1-200)"
	proxy_flush
	legacy_flush
	if [ "$tg" = RSYNPROXY ]; then expect_hooks r 0 "rules flushed"; else expect_hooks r 0 "rules flushed" nf_synproxy_core; fi
}

# rmmod under traffic: refused while a rule exists, done after the flush with the transfers
# still running; rules without --timestamp, so the connections need only seqadj, which
# conntrack itself applies (nf_confirm): they must finish byte-exact without the module, as
# long as conntrack stays in use in the namespace (a stateful rule elsewhere, as on any
# router: with no rule left at all, conntrack's own hooks go too, and so does seqadj).
rmmod_traffic() {
	local tg=$1 m
	fresh_servers 10.0.2.99:8086
	proxy_rules 4 forward "$tg" --sack-perm --wscale 7 --mss 1460
	inns r nft -f - <<<'table inet keeper { chain track { type filter hook forward priority 10; ct state established counter; }; }'
	rm -f "$W/stop"
	inns c python3 "$TOOLS/xfer.py" stream 10.0.2.99 8086 --until "$W/stop" >"$W/stream.out" 2>&1 &
	local st=$!
	bg_track $st
	sleep 3
	for m in $(in_use_by_ipv4 "$tg"); do
		if rmmod "$m" 2>"$W/rmmod.err"; then fail "rmmod $m succeeded with rules in place"; fi
		grep -qi "in use" "$W/rmmod.err" || fail "rmmod $m: $(cat "$W/rmmod.err")"
	done
	proxy_flush
	for m in $(modules_of "$tg"); do
		wait_for rmmod "$m" || fail "rmmod $m after the flush: $(rmmod "$m" 2>&1)"
	done
	! inns r test -e "/proc/net/stat/$(stat_file "$tg")" || fail "/proc/net/stat/$(stat_file "$tg") outlived the module"
	sleep 2
	touch "$W/stop"
	wait $st || fail "the transfer across the unload failed: $(cat "$W/stream.out")"
	figure "churn-rmmod $tg transfer_bytes=$(cat "$W/stream.out")"
	inns r nft delete table inet keeper
}

reload_cycles() {
	local i
	fresh_servers 10.0.2.99:8087 fd00:2::99:8087
	# Whatever an earlier test left: no rule remains (fresh namespaces), so it must go.
	if loaded rsynproxy; then wait_for rmmod rsynproxy || fail "rmmod before the rounds: $(rmmod rsynproxy 2>&1)"; fi
	for i in $(seq "$ROUNDS"); do
		! loaded rsynproxy || fail "round $i: rsynproxy still loaded"
		proxy_rules_all RSYNPROXY "${RULE[@]}"
		loaded rsynproxy || fail "round $i: the rule did not load rsynproxy"
		inns r test -e /proc/net/stat/rsynproxy || fail "round $i: no /proc/net/stat/rsynproxy"
		inns c python3 "$TOOLS/xfer.py" client 10.0.2.99 8087 50000 50000 --seed "$i" || fail "round $i: IPv4 transfer"
		inns c python3 "$TOOLS/xfer.py" client fd00:2::99 8087 50000 50000 --seed "$i" || fail "round $i: IPv6 transfer"
		proxy_flush
		wait_for rmmod rsynproxy || fail "round $i: rmmod: $(rmmod rsynproxy 2>&1)"
		! inns r test -e /proc/net/stat/rsynproxy || fail "round $i: /proc/net/stat/rsynproxy outlived the module"
	done
	figure "churn-reload RSYNPROXY rounds=$ROUNDS"
}

# conntrack -F mid-transfer: the entries (and their seqadj) go, so the transfers in flight
# die (both targets alike: their packets are INVALID and fail the cookie check); the
# proxy must then take new connections, and nothing may splat or leak.
ct_flush() {
	local tg=$1 before after
	fresh_servers 10.0.2.99:8088
	proxy_rules 4 forward "$tg" "${RULE[@]}"
	rm -f "$W/stop"
	inns c python3 "$TOOLS/xfer.py" flows 10.0.2.99 8088 --flows 4 --bytes 2000000 --timeout 8 >"$W/ctf.out" 2>&1 &
	local fl=$!
	bg_track $fl
	sleep 3
	local n
	n=$(ct_count)
	[ "$n" -gt 0 ] || fail "no conntrack entry in r mid-transfer"
	inns r conntrack -F 2>/dev/null
	[ "$(ct_count)" -lt "$n" ] || fail "conntrack -F left $(ct_count) of $n entries"
	wait $fl || true
	before=$(stat_sum r "$(stat_file "$tg")")
	inns c python3 "$TOOLS/xfer.py" client 10.0.2.99 8088 100000 100000 --seed 9 || fail "no new connection after the flush"
	after=$(stat_sum r "$(stat_file "$tg")")
	local -a d=($(stat_delta "$before" "$after"))
	[ "${d[2]}" -ge 1 ] || fail "the new connection did not pass the proxy (cookie_valid +${d[2]})"
	figure "churn-ctflush $tg flushed=$n flows=$(head -n 1 "$W/ctf.out" | tr -d ' ' | cut -c1-160)"
}

for tg in RSYNPROXY SYNPROXY; do
	t "namespace churn: $CYCLES namespaces deleted with IPv4+IPv6 rules and 6 open proxied connections, references back ($tg)" ns_churn $tg
	t "rules replaced under traffic: nft/legacy restore and -I/-D, $ROUNDS rounds, transfers byte-exact, hooks gone after the flush ($tg)" rules_replace $tg
	t "conntrack -F mid-transfer: no fault, new connections proxied after it ($tg)" ct_flush $tg
	t "rmmod refused while rules exist, done after the flush with a transfer in flight that ends byte-exact ($tg)" rmmod_traffic $tg
done
t "unload/reload: $ROUNDS rounds of rule-autoload, IPv4+IPv6 transfers, flush, rmmod" reload_cycles
for n in c r s; do ip netns del $n 2>/dev/null || true; done
