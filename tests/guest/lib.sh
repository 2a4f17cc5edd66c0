# Sourced by the guest tests: TAP lines and small helpers.
#
# Every test is a function run by `t` in its own subshell with errexit, errtrace and
# pipefail: any command that fails outside an if/while/!/&&/|| condition fails the test,
# and `fail` exits it. A check is written either as a bare command that must succeed, or
# as `cond || fail "why"`. Never `cmd && fail …` as the last word of a function without
# errexit in force, never `fail … && …`: fail does not return.

# t NAME FUNCTION [ARG...]: run a test, print "ok - NAME" or "not ok - NAME" with its output.
# RSYNPROXY_ONLY=REGEX (tests/mutants): run only the tests whose name matches; the others
# print nothing, so the part falls short of the plan.
t() {
	local name=$1 out rc t0=$SECONDS
	shift
	if [ -n "${RSYNPROXY_ONLY:-}" ] && ! [[ $name =~ $RSYNPROXY_ONLY ]]; then
		return 0
	fi
	out=$(
		set -eE -o pipefail
		shopt -s inherit_errexit
		trap 'echo "failed: $BASH_COMMAND (${FUNCNAME[0]:-main}:$LINENO)" >&2' ERR
		"$@" 2>&1
	)
	rc=$?
	# The time each test took, as a TAP comment line (where a slow run spends it).
	if [ "$rc" = 0 ]; then
		echo "ok - $name"
	else
		echo "not ok - $name"
		printf '%s\n' "$out" | sed 's/^/#   /'
	fi
	echo "#   $((SECONDS - t0)) s"
	return 0
}

# fail MESSAGE: explain and end the test (tests run in a subshell of `t`).
fail() {
	echo "$*" >&2
	exit 1
}

# expect_eq WHAT GOT WANT: fatal when they differ.
expect_eq() {
	[ "$2" = "$3" ] && return 0
	printf '%s differs\n--- got\n%s\n--- want\n%s\n' "$1" "$2" "$3" >&2
	exit 1
}

# netns NAME: a fresh network namespace with lo up.
netns() {
	ip netns del "$1" 2>/dev/null || true
	ip netns add "$1"
	ip -n "$1" link set lo up
}

# inns NS CMD...: run in a namespace.
inns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

loaded() {
	grep -q "^$1 " /proc/modules
}
