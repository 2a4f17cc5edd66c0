# Sourced by run.sh after the parts: what the debug kernel recorded during the run.
# TAINT_OOT_MODULE (O, bit 12) is expected for rsynproxy.ko and TAINT_TEST (N, bit 18) for
# its KUnit build; any other taint bit (W warning, D oops, B bad page, L soft lockup …) fails.
# tests/distro/guest.sh (Debian's kernel, DKMS-signed module with a key it does not know) sets
# O and E (bit 13, unsigned module) instead, before sourcing this file.
HEALTH_ALLOWED_TAINT=${HEALTH_ALLOWED_TAINT:-$(((1 << 12) | (1 << 18)))}
HEALTH_ALLOWED_NAMES=${HEALTH_ALLOWED_NAMES:-O and N}

health_leaks() {
	local f=/sys/kernel/debug/kmemleak
	[ -w $f ] || fail "kmemleak is not available ($f)"
	# Objects younger than 5 s are not reported: wait, then scan twice (the second scan
	# confirms what the first found).
	sleep 6
	echo scan >$f
	echo scan >$f
	local leaks
	leaks=$(cat $f)
	[ -z "$leaks" ] || { cp $f "$RSYNPROXY_OUT/kmemleak.txt"; fail "kmemleak: $(grep -c '^unreferenced object' <<<"$leaks") leaked objects; first: $(head -n 20 <<<"$leaks")"; }
}

health_taint() {
	local taint
	taint=$(cat /proc/sys/kernel/tainted)
	((taint & ~HEALTH_ALLOWED_TAINT)) && fail "kernel tainted $taint (bits other than $HEALTH_ALLOWED_NAMES: see Documentation/admin-guide/tainted-kernels.rst)"
	return 0
}

health_report() {
	t "guest: kmemleak found no leak" health_leaks
	t "guest: the kernel is not tainted beyond O (and N for KUnit)" health_taint
}
