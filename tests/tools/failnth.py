#!/usr/bin/python3
"""failnth.py N COMMAND [ARG...]: run COMMAND with the Nth fault-injection point of this task
failing (Documentation/fault-injection: /proc/<pid>/fail-nth). The value is per task and
survives execve, so the allocations COMMAND's own system calls make are the ones counted,
among those the fault attributes' filters let through (tests/guest/hostile/faults.sh aims them
at one module's text)."""
import os
import sys

if len(sys.argv) < 3:
    sys.exit(__doc__)
with open("/proc/thread-self/fail-nth", "w") as f:
    f.write(sys.argv[1])
os.execvp(sys.argv[2], sys.argv[2:])
