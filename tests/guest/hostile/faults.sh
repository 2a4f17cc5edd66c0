#!/bin/bash
# Allocation failures aimed at one module, RSYNPROXY (rsynproxy) then SYNPROXY
# (nf_synproxy_core, where its allocations are made): failslab and fail_page_alloc with the
# stack-trace filter over that module's text, so only allocations made while its code is on
# the stack fail (CONFIG_FAULT_INJECTION_STACKTRACE_FILTER).
#
# Namespace init and rule checkentry are failed systematically, one allocation at a time
# (/proc/self/fail-nth, set by tests/tools/failnth in the task that makes the system call):
# each failure must be refused cleanly (the namespace or the rule, with ENOMEM) and the next
# attempt must work. The packet path is failed at random (5 %) under a spoofed flood and
# real transfers: the proxy answers what it can, the transfers complete byte-exact, the
# counters stay consistent. kmemleak (end of boot) must find nothing.
. "$(dirname "$0")/../topo.sh"

DBG=/sys/kernel/debug
W=/tmp/hostile/faults
RULE=(--sack-perm --timestamp --wscale 7 --mss 1460)
TIMES=1000000

# The module whose text the faults are aimed at: the one whose code makes (or calls what
# makes) the allocations. SYNPROXY's pernet init and packet path are in nf_synproxy_core, its
# checkentry (which registers the hooks through nf_synproxy_core) in ipt_/ip6t_SYNPROXY.
core_of() { if [ "$1" = RSYNPROXY ]; then echo rsynproxy; else echo nf_synproxy_core; fi; }
checkentry_of() {
	case $1:$2 in
	RSYNPROXY:*) echo rsynproxy ;;
	SYNPROXY:ip6*) echo ip6t_SYNPROXY ;;
	SYNPROXY:*) echo ipt_SYNPROXY ;;
	esac
}

# aim MODULE PROBABILITY: both fault attributes at MODULE's text, quiet (a stack dump would
# read as a splat), sleeping allocations included.
aim() {
	local lo hi a syms
	syms=$(awk -v m="[$1]" '$4 == m && ($2 == "t" || $2 == "T") { print $1 }' /proc/kallsyms | sort)
	lo=$(head -n 1 <<<"$syms")
	hi=$(tail -n 1 <<<"$syms")
	[ -n "$lo" ] && [ -n "$hi" ] || fail "no text symbols of $1 in /proc/kallsyms"
	for a in failslab fail_page_alloc; do
		echo 0 >$DBG/$a/probability
		echo 0 >$DBG/$a/verbose
		echo 1 >$DBG/$a/interval
		echo $TIMES >$DBG/$a/times
		echo "0x$lo" >$DBG/$a/require-start
		# The last function's end is not listed: a page past its start covers it.
		printf '0x%x\n' $((16#$hi + 4096)) >$DBG/$a/require-end
		echo 32 >$DBG/$a/stacktrace-depth
		echo "$2" >$DBG/$a/probability
	done
	echo N >$DBG/failslab/ignore-gfp-wait
	echo N >$DBG/fail_page_alloc/ignore-gfp-wait
	echo N >$DBG/fail_page_alloc/ignore-gfp-highmem
	echo 0 >$DBG/fail_page_alloc/min-order
}

disarm() {
	local a
	for a in failslab fail_page_alloc; do
		echo 0 >$DBG/$a/probability
		echo $TIMES >$DBG/$a/times
	done
}

# injected: failures made since aim (both attributes).
injected() { echo $((2 * TIMES - $(cat $DBG/failslab/times) - $(cat $DBG/fail_page_alloc/times))); }

failnth() { python3 "$TOOLS/failnth.py" "$@"; }

# netns_init TARGET: fail the Nth allocation of the pernet init, N = 1, 2, ... until a
# namespace comes up with no failure injected.
netns_init() {
	local tg=$1 m n inj out refused=0
	m=$(core_of "$tg")
	modprobe "$m" # its pernet init now runs for every new namespace
	aim "$m" 0
	for n in $(seq 1 60); do
		ip netns del fx 2>/dev/null || true
		inj=$(injected)
		out=$(failnth "$n" ip netns add fx 2>&1) && rc=0 || rc=$?
		inj=$(($(injected) - inj))
		if [ "$inj" = 0 ]; then
			[ "$rc" = 0 ] || fail "N=$n: no failure injected, yet ip netns add failed: $out"
			inns fx test -e "/proc/net/stat/$(stat_file "$tg")" || fail "N=$n: the namespace has no proc file"
			break
		fi
		if [ "$rc" = 0 ]; then
			# A failure the init tolerates must leave a working namespace.
			inns fx test -e "/proc/net/stat/$(stat_file "$tg")" ||
				fail "N=$n: allocation failed, namespace created, but without its proc file"
		else
			grep -qi "cannot allocate memory" <<<"$out" || fail "N=$n: ip netns add failed otherwise: $out"
			refused=$((refused + 1))
		fi
	done
	[ "$inj" = 0 ] || fail "still injecting at N=$n"
	disarm
	ip netns del fx
	figure "faults-netns $tg allocations=$((n - 1)) refused=$refused"
	[ "$n" -gt 1 ] || fail "the pernet init of $m made no allocation the filter caught (range wrong?)"
}

# rule_check TARGET TOOL: fail the Nth allocation made while the target's checkentry (and
# the hook registration it triggers) runs, until the rule goes in with nothing injected.
rule_check() {
	local tg=$1 ipt=$2 m n inj out rc refused=0
	m=$(checkentry_of "$tg" "$ipt")
	netns fr
	modprobe "$m"
	aim "$m" 0
	for n in $(seq 1 60); do
		inns fr "$ipt" -F INPUT
		inj=$(injected)
		out=$(inns fr python3 "$TOOLS/failnth.py" "$n" "$ipt" -A INPUT -p tcp -m state --state INVALID,UNTRACKED -j "$tg" "${RULE[@]}" 2>&1) && rc=0 || rc=$?
		inj=$(($(injected) - inj))
		if [ "$inj" = 0 ]; then
			[ "$rc" = 0 ] || fail "N=$n: no failure injected, yet $ipt failed: $out"
			break
		fi
		if [ "$rc" != 0 ]; then
			refused=$((refused + 1))
			[ "$(inns fr "$ipt" -S INPUT | grep -c -- "-j $tg")" = 0 ] || fail "N=$n: a refused rule is listed"
		fi
	done
	[ "$inj" = 0 ] || fail "still injecting at N=$n"
	disarm
	# The rule works: hooks are there, and a second namespace's rule and flush are sound.
	if [ "$tg" = RSYNPROXY ]; then expect_hooks fr 2 "the rule after the faults"; fi
	inns fr "$ipt" -F INPUT
	if [ "$tg" = RSYNPROXY ]; then expect_hooks fr 0 "rules flushed"; fi
	ip netns del fr
	figure "faults-rule $tg $ipt allocations=$((n - 1)) refused=$refused"
}

# packet_path TARGET: 5 % of the allocations made under the module fail while spoofed SYNs
# and three transfers go through; then nothing fails any more. SYNPROXY allocates a SYN-ACK
# for every flood SYN; RSYNPROXY writes it over the SYN and allocates only per connection
# (the backend SYN's conntrack entry, the ACK to the backend, a private copy where the
# timestamp rewrite meets a cloned segment): short transfers are added, one every 0.3 s,
# until at least FAULTS_MIN allocations have failed (60 s at most), so that every run fails
# some whatever the target. Every SYN must be counted, and every transfer opened under the
# faults must finish byte-exact once they stop (they see loss and must recover from it).
FAULTS_MIN=3
packet_path() {
	local tg=$1 m file before after srv inj i
	m=$(core_of "$tg")
	file=$(stat_file "$tg")
	topo_up
	mkdir -p "$W"
	proxy_rules 4 forward "$tg" "${RULE[@]}"
	ip netns exec s python3 "$TOOLS/xfer.py" server 10.0.2.99 8095 --parallel >/dev/null 2>&1 &
	srv=$!
	bg_track $srv
	sleep 1
	if [ -n "${HOSTILE_CAPTURE:-}" ]; then
		# Debugging: the transfers (not the spoofed flood) on both sides of the proxy.
		local cap=$RSYNPROXY_OUT/faults-$tg-$(date +%s)
		capture r veth0 "$cap-client.pcap" host 10.0.1.99 and port 8095
		capture r veth1 "$cap-backend.pcap" host 10.0.1.99 and port 8095
	fi
	before=$(stat_sum r "$file")
	aim "$m" 5
	local -a pids=() outs=()
	# xfer SEED BYTES: a transfer in the background, BYTES each way.
	xfer() {
		outs+=("$W/xfer.$tg.$1")
		inns c python3 "$TOOLS/xfer.py" client 10.0.2.99 8095 "$2" "$2" --seed "$1" --timeout 120 >"${outs[-1]}" 2>&1 &
		pids+=($!)
		bg_track $!
	}
	for i in 1 2 3; do xfer "$i" 300000; done
	inns c python3 "$TOOLS/rawtcp.py" flood --dst 10.0.2.99 --dport 8095 --src-net 10.0.3.0/24 --count 2000 >"$W/flood.$tg" 2>&1 ||
		fail "flood: $(cat "$W/flood.$tg")"
	local t0=$SECONDS
	while [ "$(injected)" -lt $FAULTS_MIN ] && [ $((SECONDS - t0)) -lt 60 ]; do
		xfer $((100 + ${#pids[@]})) 20000
		sleep 0.3
	done
	local added=$((SECONDS - t0))
	sleep 15
	inj=$(injected)
	disarm
	local stalls=0
	for i in "${!pids[@]}"; do
		wait "${pids[i]}" && continue
		# SYNPROXY: a handshake ACK whose backend SYN failed to allocate leaves the client
		# sending zero-window probes that C never accepts (C bug 7 of differences.md): a
		# time-out before the backend acknowledged a byte is counted for it. Anything else
		# fails either target.
		if [ "$tg" = SYNPROXY ] && grep -q 'TimeoutError: .*, acked 0)' "${outs[i]}"; then
			stalls=$((stalls + 1))
			continue
		fi
		ct_of_ports "${outs[i]}"
		fail "transfer $((i + 1)) of ${#pids[@]}, opened under the faults, did not finish byte-exact: $(tail -n 2 "${outs[i]}")"
	done
	after=$(stat_sum r "$file")
	local -a d=($(stat_delta "$before" "$after"))
	figure "faults-packets $tg injected=$inj transfers=${#pids[@]} syn_received=${d[0]} cookie_valid=${d[2]} c_bug7_stalls=$stalls"
	[ "$inj" -ge $FAULTS_MIN ] || fail "$inj allocations failed on the packet path in $added s of new transfers, want $FAULTS_MIN"
	[ "${d[0]}" -ge 2000 ] || fail "syn_received +${d[0]}, want at least the 2000 flood SYNs"
	proxy_flush
}

[ -d $DBG/failslab ] || mount -t debugfs none $DBG
for tg in RSYNPROXY SYNPROXY; do
	t "namespace init: each allocation failed in turn is refused with ENOMEM, then a namespace comes up ($tg)" netns_init $tg
	t "rule checkentry (iptables-nft): each allocation failed in turn refuses the rule, then it goes in ($tg)" rule_check $tg iptables-nft
	t "rule checkentry (ip6tables-legacy): the same ($tg)" rule_check $tg ip6tables-legacy
	t "packet path with 5 % of the module's allocations failing: flood counted, transfers opened meanwhile end byte-exact ($tg)" packet_path $tg
done
disarm
for n in c r s; do ip netns del $n 2>/dev/null || true; done
