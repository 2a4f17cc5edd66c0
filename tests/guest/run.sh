#!/bin/bash
# Entry point of the in-VM tests (run by tests/run-all through tests/vm-run).
# Each part prints "# part NAME" then its TAP lines; tests/run-all counts them against
# tests/plan, so a part that dies halfway is a failure. After the parts: a kmemleak scan and
# the taint flags (the host greps the whole console log too). KUnit results land in
# $RSYNPROXY_OUT/*.ktap for the host to parse.
here=$(dirname "$0")
. "$here/lib.sh" # health.sh's checks run through `t`
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=("$here"/[0-9]*.sh)
for f in "${parts[@]}"; do
	echo "# part ${f##*/}"
	t=$SECONDS
	bash "$f" || echo "not ok - ${f##*/} ran to the end (exit status $?)"
	echo "# time: ${f##*/} $((SECONDS - t)) s"
done
echo "# part guest-health"
. "$here/health.sh"
health_report
dmesg >"$RSYNPROXY_OUT/dmesg.txt"
