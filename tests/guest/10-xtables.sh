#!/bin/bash
# The target and its plugin with iptables-nft, iptables-legacy and both ip6tables:
# autoload, the seed recipe, -S/save/restore, refusals (plugin and kernel), module lifetime,
# and coexistence with the in-tree C SYNPROXY.
. "$(dirname "$0")/lib.sh"

RECIPE_OPTS="--sack-perm --timestamp --wscale 9 --mss 1460"

# Tool names for a backend and family.
tool() { # tool nft|legacy 4|6 [-save|-restore]
	local p=iptables
	[ "$2" = 6 ] && p=ip6tables
	echo "$p-$1$3"
}

# The seed recipe of the SYNPROXY man page, with RSYNPROXY, in namespace $1.
apply_recipe() {
	local ns=$1 ipt=$2
	inns "$ns" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
	inns "$ns" "$ipt" -t raw -A PREROUTING -p tcp -m tcp --syn -j CT --notrack
	inns "$ns" "$ipt" -A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY $RECIPE_OPTS
	inns "$ns" "$ipt" -A INPUT -m state --state INVALID -j DROP
}

# kunit_results NAME: the test build's KUnit suite ran at load; keep its results for the host.
kunit_results() {
	local f=/sys/kernel/debug/kunit/rsynproxy/results
	if [ -e $f ]; then cp $f "$RSYNPROXY_OUT/kunit-$1.ktap"; fi
}

# flush_all: flush the filter tables of every namespace with every tool, so that no rule
# holds the module.
flush_all() {
	local ns b list
	list=$(ip netns list | cut -d' ' -f1)
	for ns in $list; do
		for b in nft legacy; do
			inns "$ns" "iptables-$b" -F
			inns "$ns" "ip6tables-$b" -F
		done
	done
}

test_autoload() {
	! loaded rsynproxy || fail "rsynproxy is loaded before any rule"
	netns auto
	inns auto iptables-nft -A INPUT -p tcp -j RSYNPROXY --mss 1460
	loaded rsynproxy || fail "the rule did not load rsynproxy"
	inns auto iptables-nft -F
	kunit_results autoload
}

test_recipe() { # backend family
	local ns=r$1$2 ipt
	ipt=$(tool "$1" "$2")
	netns "$ns"
	apply_recipe "$ns" "$ipt"
	local want="-P INPUT ACCEPT
-A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY $RECIPE_OPTS
-A INPUT -m state --state INVALID -j DROP"
	expect_eq "$ipt -S INPUT" "$(inns "$ns" "$ipt" -S INPUT)" "$want"
	local list
	list=$(inns "$ns" "$ipt" -L INPUT -n | grep RSYNPROXY)
	[[ $list == *"RSYNPROXY sack-perm timestamp wscale 9 mss 1460"* ]] ||
		fail "-L shows: $list"
}

# Every option combination survives save | restore exactly.
test_save_restore() { # backend family
	local ns=s$1$2 ipt save restore
	ipt=$(tool "$1" "$2")
	save=$(tool "$1" "$2" -save)
	restore=$(tool "$1" "$2" -restore)
	netns "$ns"
	apply_recipe "$ns" "$ipt"
	# "given options|what -S shows" (save prints the options in the plugin's table order)
	local cases=(
		"|" "--ecn|" "--timestamp|" "--sack-perm --ecn|" "--wscale 0|" "--timestamp --wscale 14|"
		"--mss 1|" "--mss 65535|" "--sack-perm --timestamp --wscale 7 --mss 536 --ecn|"
		"--ecn --mss 536 --wscale 3 --sack-perm|--sack-perm --wscale 3 --mss 536 --ecn"
	)
	local c o want got
	for c in "${cases[@]}"; do
		o=${c%%|*}
		want=${c#*|}
		[ -n "$want" ] || want=$o
		inns "$ns" "$ipt" -A FORWARD -p tcp --dport 80 -j RSYNPROXY $o || fail "options '$o' refused"
		got=$(inns "$ns" "$ipt" -S FORWARD | tail -n 1)
		expect_eq "-S for '$o'" "$got" "-A FORWARD -p tcp -m tcp --dport 80 -j RSYNPROXY${want:+ $want}"
	done
	local before after
	before=$(inns "$ns" "$save" | grep -v '^#')
	[ "$(grep -c -- '-j RSYNPROXY' <<<"$before")" = $((${#cases[@]} + 1)) ] || fail "save lacks rules: $before"
	inns "$ns" "$ipt" -t raw -F
	inns "$ns" "$ipt" -F
	expect_eq "RSYNPROXY rules after flush" "$(rule_count "$ns" "$ipt")" 0
	printf '%s\n' "$before" | inns "$ns" "$restore" || fail "restore failed"
	after=$(inns "$ns" "$save" | grep -v '^#')
	expect_eq "save after restore" "$after" "$before"
}

rule_count() { # ns ipt
	local rules
	rules=$(inns "$1" "$2" -S)
	grep -c -- '-j RSYNPROXY' <<<"$rules" || true
}

# The plugin refuses bad values before anything reaches the kernel.
test_plugin_refuses() { # backend family
	local ns=p$1$2 ipt
	ipt=$(tool "$1" "$2")
	netns "$ns"
	local bad=("--wscale 15" "--wscale 255" "--mss 0" "--mss 65536" "--mss abc" "--mss 1 --mss 2")
	local o out
	for o in "${bad[@]}"; do
		if out=$(inns "$ns" "$ipt" -A INPUT -p tcp -j RSYNPROXY $o 2>&1); then
			fail "'$o' was accepted"
		fi
		case "$out" in
		*"bad value for option"* | *"can only be used once"*) ;;
		*) fail "'$o': unclear message: $out" ;;
		esac
	done
	expect_eq "RSYNPROXY rules after refusals" "$(rule_count "$ns" "$ipt")" 0
}

# checkentry refuses what iptables cannot catch, with a kernel message naming the reason.
test_kernel_refuses() { # backend family check-messages(0|1)
	local ns=k$1$2 ipt
	ipt=$(tool "$1" "$2")
	netns "$ns"
	local -a rules=("-p udp" "" "! -p tcp")
	local -a why=("rule must match -p tcp" "rule must match -p tcp" "rule must not invert the protocol match")
	local i n out log
	for i in 0 1 2; do
		# New kernel lines only (the log is kept whole for the health checks).
		log=$(dmesg)
		n=$(wc -l <<<"$log")
		if out=$(inns "$ns" "$ipt" -A INPUT ${rules[$i]} -j RSYNPROXY --mss 1460 2>&1); then
			fail "rule '${rules[$i]}' was accepted"
		fi
		# EINVAL from the kernel's checkentry, not a refusal by iptables or the plugin.
		[[ $out == *"Invalid argument"* ]] || fail "rule '${rules[$i]}' refused, but not by the kernel: $out"
		if [ "$3" = 1 ]; then
			log=$(dmesg)
			tail -n +$((n + 1)) <<<"$log" | grep -qF "RSYNPROXY rule refused: ${why[$i]}" ||
				fail "no kernel message for '${rules[$i]}': $(tail -n 3 <<<"$log")"
		fi
	done
	expect_eq "RSYNPROXY rules after refusals" "$(rule_count "$ns" "$ipt")" 0
}

test_rmmod_while_used() {
	# Every namespace the tests used flushed: the one rule below is the only user.
	flush_all
	loaded rsynproxy || fail "rsynproxy is not loaded (the earlier tests' rules load it)"
	netns held
	inns held ip6tables-legacy -A INPUT -p tcp -j RSYNPROXY --timestamp
	local out
	if out=$(rmmod rsynproxy 2>&1); then
		fail "rmmod succeeded while a rule uses the target"
	fi
	[[ $out == *"in use"* ]] || fail "rmmod failed, but not because the module is in use: $out"
	loaded rsynproxy || fail "rsynproxy is gone"
	inns held ip6tables-legacy -F
	rmmod rsynproxy || fail "rmmod failed after the rule was flushed"
	! loaded rsynproxy || fail "rsynproxy is still loaded after rmmod"
}

proc_shape() { # file: header, then one line of six 8-digit hex columns per possible CPU
	local f=$1 ncpu
	ncpu=$(($(cut -d- -f2 /sys/devices/system/cpu/possible) + 1))
	expect_eq "$f lines" "$(wc -l <"$f")" "$((ncpu + 1))"
	expect_eq "$f header" "$(head -n 1 "$f")" \
		"$(printf 'entries\t\tsyn_received\tcookie_invalid\tcookie_valid\tcookie_retrans\tconn_reopened')"
	local bad
	bad=$(tail -n +2 "$f" | grep -vP '^([0-9a-f]{8}\t){5}[0-9a-f]{8}$' || true)
	[ -z "$bad" ] || fail "$f: malformed lines: $bad"
}

# Both targets at once, each in its own namespace; load and unload in either order.
test_coexist() {
	# C first: rsynproxy must not be loaded yet (the previous test unloads it).
	if loaded rsynproxy; then
		flush_all
		rmmod rsynproxy
	fi
	modprobe ipt_SYNPROXY
	modprobe ip6t_SYNPROXY
	loaded nf_synproxy_core || fail "nf_synproxy_core not loaded"
	modprobe rsynproxy || fail "rsynproxy does not load beside nf_synproxy_core"
	loaded rsynproxy || fail "modprobe rsynproxy loaded nothing"
	kunit_results beside-c
	netns cr
	netns cc
	apply_recipe cr iptables-nft
	inns cc sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
	inns cc iptables-legacy -A INPUT -p tcp -m state --state INVALID,UNTRACKED -j SYNPROXY $RECIPE_OPTS
	inns cc ip6tables-nft -A INPUT -p tcp -j SYNPROXY $RECIPE_OPTS
	inns cr ip6tables-legacy -A INPUT -p tcp -j RSYNPROXY $RECIPE_OPTS
	local f
	for f in rsynproxy synproxy; do
		inns cr cat /proc/net/stat/$f >/tmp/$f
		proc_shape /tmp/$f
	done
	expect_eq "C and Rust proc headers" "$(head -n 1 /tmp/rsynproxy)" "$(head -n 1 /tmp/synproxy)"
	inns cr iptables-nft -F
	inns cr ip6tables-legacy -F
	rmmod rsynproxy || fail "rsynproxy does not unload beside nf_synproxy_core"
	! loaded rsynproxy || fail "rsynproxy still loaded"
	inns cc iptables-legacy -S INPUT | grep -q -- "-j SYNPROXY" || fail "C IPv4 rule lost"
	inns cc ip6tables-nft -S INPUT | grep -q -- "-j SYNPROXY" || fail "C IPv6 rule lost"
	inns cc iptables-legacy -F
	inns cc ip6tables-nft -F
	# rsynproxy first now: the C modules go, rsynproxy stays.
	modprobe rsynproxy
	rmmod ipt_SYNPROXY ip6t_SYNPROXY nf_synproxy_core || fail "C modules do not unload beside rsynproxy"
	! loaded nf_synproxy_core || fail "nf_synproxy_core still loaded"
	loaded rsynproxy || fail "rsynproxy went with the C modules"
	rmmod rsynproxy
	! loaded rsynproxy || fail "rsynproxy still loaded"
}

# The C target takes what RSYNPROXY's checkentry refuses (KUnit checkentry_ipv4/ipv6), and
# says nothing: --wscale above 14 and --mss 0.
test_c_accepts() {
	modprobe ipt_SYNPROXY
	netns cacc
	local log n new
	log=$(dmesg)
	n=$(wc -l <<<"$log")
	inns cacc iptables-legacy -A INPUT -p tcp -j SYNPROXY --wscale 15 --mss 0 || fail "SYNPROXY refused the rule"
	expect_eq "SYNPROXY rule" "$(inns cacc iptables-legacy -S INPUT | tail -n 1)" "-A INPUT -p tcp -j SYNPROXY --wscale 15 --mss 0"
	log=$(dmesg)
	new=$(tail -n +$((n + 1)) <<<"$log" | grep -i synproxy || true)
	[ -z "$new" ] || fail "SYNPROXY logged: $new"
	inns cacc iptables-legacy -F
	ip netns del cacc
}

# hooks_of NS MODULE: "family hook priority" of the netfilter hooks MODULE registered in NS,
# from `nft list hooks` (blocks "family F {", "hook H {", then "PRIORITY FUNCTION [MODULE]").
hooks_of() {
	local out
	out=$(inns "$1" nft list hooks)
	awk -v m="[$2]" '
		$1 == "family" { fam = $2 }
		$1 == "hook" { hook = $2 }
		index($0, m) { print fam, hook, $1 + 0 }' <<<"$out" | sort
}

# Both targets hook LOCAL_IN and POST_ROUTING for both families at the same priority, just
# before conntrack confirms (NF_IP_PRI_CONNTRACK_CONFIRM - 1 = INT_MAX - 1).
test_hooks() {
	modprobe ipt_SYNPROXY
	modprobe ip6t_SYNPROXY
	netns hr
	netns hc
	inns hr iptables-nft -A INPUT -p tcp -j RSYNPROXY --mss 1460
	inns hr ip6tables-legacy -A INPUT -p tcp -j RSYNPROXY --mss 1460
	inns hc iptables-legacy -A INPUT -p tcp -j SYNPROXY --mss 1460
	inns hc ip6tables-nft -A INPUT -p tcp -j SYNPROXY --mss 1460
	local r c want
	r=$(hooks_of hr rsynproxy)
	c=$(hooks_of hc nf_synproxy_core)
	want=$(printf '%s\n' "ip input 2147483646" "ip postrouting 2147483646" \
		"ip6 input 2147483646" "ip6 postrouting 2147483646")
	expect_eq "RSYNPROXY hooks" "$r" "$want"
	expect_eq "SYNPROXY hooks" "$c" "$want"
	[ -z "$(hooks_of hc rsynproxy)" ] || fail "rsynproxy hooks in SYNPROXY's namespace"
	inns hr iptables-nft -F
	inns hr ip6tables-legacy -F
	[ -z "$(hooks_of hr rsynproxy)" ] || fail "rsynproxy hooks left after the rules went: $(inns hr nft list hooks)"
	inns hc iptables-legacy -F
	inns hc ip6tables-nft -F
	ip netns del hr
	ip netns del hc
}

t "module autoloads on the first rule" test_autoload
for b in nft legacy; do
	for v in 4 6; do
		t "$(tool $b $v): seed recipe accepted, -S/-L exact" test_recipe $b $v
		t "$(tool $b $v): save | restore round trip" test_save_restore $b $v
		t "$(tool $b $v): plugin refuses bad values, no rule left" test_plugin_refuses $b $v
	done
done
# Messages are limited to 10 per 5 s: check them on two tools (six messages), the refusals
# themselves on all four.
t "iptables-legacy: kernel refuses non-tcp and inverted rules, with reasons" test_kernel_refuses legacy 4 1
t "ip6tables-nft: kernel refuses non-tcp and inverted rules, with reasons" test_kernel_refuses nft 6 1
t "iptables-nft: kernel refuses non-tcp and inverted rules" test_kernel_refuses nft 4 0
t "ip6tables-legacy: kernel refuses non-tcp and inverted rules" test_kernel_refuses legacy 6 0
t "rmmod refused while a rule uses the target, works after flush" test_rmmod_while_used
t "coexists with the in-tree SYNPROXY (other namespace, either load order)" test_coexist
t "SYNPROXY (C) accepts --wscale 15 and --mss 0 silently, which RSYNPROXY refuses" test_c_accepts
t "hooks at LOCAL_IN and POST_ROUTING, IPv4 and IPv6, priority INT_MAX-1, as SYNPROXY's; gone with the rules" test_hooks
