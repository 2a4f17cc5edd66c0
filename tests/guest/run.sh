#!/bin/bash
# Entry point of the in-VM tests (run by tests/run-all through tests/vm-run).
# Prints TAP lines; KUnit results land in $RSYNPROXY_OUT/*.ktap for the host to parse.
here=$(dirname "$0")
for f in "$here"/[0-9]*.sh; do
	echo "# ${f##*/}"
	bash "$f" || echo "not ok - ${f##*/} ran to the end (exit status $?)"
done
dmesg >"$RSYNPROXY_OUT/dmesg.txt"
