# Sourced by the guest tests: TAP lines and small helpers. Each test is a function that
# returns non-zero on failure and explains itself on stderr.

# t NAME FUNCTION [ARG...]: run a test, print "ok - NAME" or "not ok - NAME" with its output.
t() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" = 0 ]; then
		echo "ok - $name"
	else
		echo "not ok - $name"
		printf '%s\n' "$out" | sed 's/^/#   /'
	fi
	return 0
}

# fail MESSAGE: explain and fail.
fail() {
	echo "$*" >&2
	return 1
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] && return 0
	printf '%s differs\n--- got\n%s\n--- want\n%s\n' "$1" "$2" "$3" >&2
	return 1
}

# netns NAME: a fresh network namespace with lo up.
netns() {
	ip netns del "$1" 2>/dev/null
	ip netns add "$1" && ip -n "$1" link set lo up
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
