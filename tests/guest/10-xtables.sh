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
	inns "$ns" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0 &&
		inns "$ns" "$ipt" -t raw -A PREROUTING -p tcp -m tcp --syn -j CT --notrack &&
		inns "$ns" "$ipt" -A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY $RECIPE_OPTS &&
		inns "$ns" "$ipt" -A INPUT -m state --state INVALID -j DROP
}

test_autoload() {
	loaded rsynproxy && fail "rsynproxy is loaded before any rule"
	netns auto
	inns auto iptables-nft -A INPUT -p tcp -j RSYNPROXY --mss 1460 || return 1
	loaded rsynproxy || fail "the rule did not load rsynproxy"
	inns auto iptables-nft -F
	cp /sys/kernel/debug/kunit/rsynproxy/results "$RSYNPROXY_OUT/kunit-autoload.ktap"
}

test_recipe() { # backend family
	local ns=r$1$2 ipt
	ipt=$(tool "$1" "$2")
	netns "$ns"
	apply_recipe "$ns" "$ipt" || return 1
	local want="-P INPUT ACCEPT
-A INPUT -p tcp -m state --state INVALID,UNTRACKED -j RSYNPROXY $RECIPE_OPTS
-A INPUT -m state --state INVALID -j DROP"
	expect_eq "$ipt -S INPUT" "$(inns "$ns" "$ipt" -S INPUT)" "$want" || return 1
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
	apply_recipe "$ns" "$ipt" || return 1
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
		inns "$ns" "$ipt" -A FORWARD -p tcp --dport 80 -j RSYNPROXY $o || fail "options '$o' refused" || return 1
		got=$(inns "$ns" "$ipt" -S FORWARD | tail -n 1)
		expect_eq "-S for '$o'" "$got" "-A FORWARD -p tcp -m tcp --dport 80 -j RSYNPROXY${want:+ $want}" || return 1
	done
	local before after
	before=$(inns "$ns" "$save" | grep -v '^#')
	inns "$ns" "$ipt" -t raw -F && inns "$ns" "$ipt" -F || return 1
	[ -z "$(inns "$ns" "$ipt" -S | grep RSYNPROXY)" ] || fail "flush left rules"
	printf '%s\n' "$before" | inns "$ns" "$restore" || fail "restore failed"
	after=$(inns "$ns" "$save" | grep -v '^#')
	expect_eq "save after restore" "$after" "$before"
}

rule_count() { # ns ipt
	inns "$1" "$2" -S | grep -c -- '-j RSYNPROXY'
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
			return 1
		fi
		case "$out" in
		*"bad value for option"* | *"can only be used once"*) ;;
		*) fail "'$o': unclear message: $out" || return 1 ;;
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
	local i
	for i in 0 1 2; do
		dmesg -C
		if inns "$ns" "$ipt" -A INPUT ${rules[$i]} -j RSYNPROXY --mss 1460 2>/dev/null; then
			fail "rule '${rules[$i]}' was accepted"
			return 1
		fi
		if [ "$3" = 1 ] && ! dmesg | grep -qF "RSYNPROXY rule refused: ${why[$i]}"; then
			fail "no kernel message for '${rules[$i]}': $(dmesg | tail -n 3)"
			return 1
		fi
	done
	expect_eq "RSYNPROXY rules after refusals" "$(rule_count "$ns" "$ipt")" 0
}

test_rmmod_while_used() {
	netns held
	inns held ip6tables-legacy -A INPUT -p tcp -j RSYNPROXY --timestamp || return 1
	rmmod rsynproxy 2>/dev/null && fail "rmmod succeeded while a rule uses the target"
	inns held ip6tables-legacy -F
	# Every namespace the tests used must be flushed for the module to go.
	local ns
	for ns in $(ip netns list | cut -d' ' -f1); do
		for b in nft legacy; do
			inns "$ns" "iptables-$b" -F 2>/dev/null
			inns "$ns" "ip6tables-$b" -F 2>/dev/null
		done
	done
	rmmod rsynproxy || fail "rmmod failed after the rules were flushed"
	! loaded rsynproxy
}

proc_shape() { # file: header, then one line of six 8-digit hex columns per possible CPU
	local f=$1 ncpu
	ncpu=$(($(cut -d- -f2 /sys/devices/system/cpu/possible) + 1))
	expect_eq "$f lines" "$(wc -l <"$f")" "$((ncpu + 1))" || return 1
	expect_eq "$f header" "$(head -n 1 "$f")" \
		"$(printf 'entries\t\tsyn_received\tcookie_invalid\tcookie_valid\tcookie_retrans\tconn_reopened')" || return 1
	tail -n +2 "$f" | grep -qvP '^([0-9a-f]{8}\t){5}[0-9a-f]{8}$' && fail "$f: malformed line"
	return 0
}

# Both targets at once, each in its own namespace; load and unload in either order.
test_coexist() {
	modprobe ipt_SYNPROXY && modprobe ip6t_SYNPROXY || return 1
	loaded nf_synproxy_core || fail "nf_synproxy_core not loaded"
	modprobe rsynproxy || fail "rsynproxy does not load beside nf_synproxy_core"
	cp /sys/kernel/debug/kunit/rsynproxy/results "$RSYNPROXY_OUT/kunit-beside-c.ktap"
	netns cr
	netns cc
	apply_recipe cr iptables-nft || return 1
	inns cc sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
	inns cc iptables-legacy -A INPUT -p tcp -m state --state INVALID,UNTRACKED -j SYNPROXY $RECIPE_OPTS || return 1
	inns cc ip6tables-nft -A INPUT -p tcp -j SYNPROXY $RECIPE_OPTS || return 1
	inns cr ip6tables-legacy -A INPUT -p tcp -j RSYNPROXY $RECIPE_OPTS || return 1
	local f
	for f in rsynproxy synproxy; do
		inns cr cat /proc/net/stat/$f >/tmp/$f || return 1
		proc_shape /tmp/$f || return 1
	done
	expect_eq "C and Rust proc headers" "$(head -n 1 /tmp/rsynproxy)" "$(head -n 1 /tmp/synproxy)" || return 1
	inns cr iptables-nft -F && inns cr ip6tables-legacy -F || return 1
	rmmod rsynproxy || fail "rsynproxy does not unload beside nf_synproxy_core"
	inns cc iptables-legacy -S INPUT | grep -q -- "-j SYNPROXY" || fail "C rule lost"
	inns cc iptables-legacy -F && inns cc ip6tables-nft -F
	modprobe rsynproxy || return 1
	rmmod ipt_SYNPROXY ip6t_SYNPROXY nf_synproxy_core || fail "C modules do not unload beside rsynproxy"
	rmmod rsynproxy
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
