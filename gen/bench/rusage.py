#!/usr/bin/env python3
"""rusage.py OUT ERR CMD...: runs CMD with stdout to OUT and stderr to ERR, waits,
prints "wall_s cpu_s" (cpu = user + system time of CMD and its waited-for
descendants). The bench divides rates by cpu_s: pps per consumed CPU-second, the
figure that holds when other jobs share the cores."""
import os
import resource
import subprocess
import sys
import time

out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
with open(out, "w") as o, open(err, "w") as e:
    subprocess.run(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, check=False)
t1 = time.monotonic()
r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(f"{t1 - t0:.3f} {cpu:.3f}")
