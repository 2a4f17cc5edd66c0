#!/bin/bash
# `make demo`, run inside the test VM: the SYNPROXY man page's recipe with RSYNPROXY in a
# fresh namespace; the first rule autoloads the module.
set -e
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

ip netns add demo
ip -n demo link set lo up
run() { echo "# $*"; ip netns exec demo "$@"; }

step "rsynproxy loaded before the first rule?"
grep -q '^rsynproxy ' /proc/modules && echo yes || echo no

step "the recipe (iptables-nft)"
run sysctl -w net.netfilter.nf_conntrack_tcp_loose=0
run iptables -t raw -A PREROUTING -p tcp -m tcp --syn -j CT --notrack
run iptables -A INPUT -p tcp -m state --state INVALID,UNTRACKED \
	-j RSYNPROXY --sack-perm --timestamp --wscale 9 --mss 1460
run iptables -A INPUT -m state --state INVALID -j DROP
run ip6tables -A INPUT -p tcp -m state --state INVALID,UNTRACKED \
	-j RSYNPROXY --sack-perm --timestamp --wscale 9 --mss 1440

step "module autoloaded"
grep '^rsynproxy ' /proc/modules

step "iptables -S / ip6tables -S"
run iptables -t raw -S PREROUTING
run iptables -S INPUT
run ip6tables -S INPUT

step "a bad value is refused"
run iptables -A INPUT -p tcp -j RSYNPROXY --wscale 15 || true
step "a rule without -p tcp is refused by the kernel"
run iptables-legacy -A INPUT -j RSYNPROXY --mss 1460 || true
dmesg | grep 'RSYNPROXY rule refused' | tail -n 1

step "/proc/net/stat/rsynproxy (one line per possible CPU)"
run cat /proc/net/stat/rsynproxy

echo
echo "Note: the data path is not in yet; the target passes packets on (XT_CONTINUE)."
