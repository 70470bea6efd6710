"""The show's process keeps numpy's BLAS on one thread: no helper thread burns CPU beside the
event loop. Each case runs in a fresh interpreter (a BLAS's threads start at import)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, os, threading, time
import numpy as np
{limit}
def others_cpu_s():
    me, total = threading.get_native_id(), 0
    for tid in os.listdir('/proc/self/task'):
        if int(tid) != me:
            fields = open(f'/proc/self/task/{{tid}}/stat').read().rsplit(')', 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf('SC_CLK_TCK')
a = np.random.default_rng(0).standard_normal((300, 300))
before, start = others_cpu_s(), time.process_time()
for _ in range(200):  # a show's pattern: a little matrix work, then a wait for the clock
    a = np.tanh(a @ a.T / 300)  # big enough for OpenBLAS to hand to its helper thread
    time.sleep(0.004)
print(json.dumps({{"others_s": others_cpu_s() - before, "all_s": time.process_time() - start,
                  "limited": {limited}}}))
"""


def probe(limit: bool) -> dict[str, float]:
    code = PROBE.format(
        limit="from stage.realtime.blas import limit_blas_threads; n = limit_blas_threads(1)"
        if limit else "n = None", limited="n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True, env={"PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout)


def test_numpy_blas_runs_on_one_thread_once_limited() -> None:
    free = probe(limit=False)
    if free["others_s"] < 0.05:  # a BLAS without helper threads: nothing to limit here
        pytest.skip(f"numpy's BLAS used no helper thread here ({free})")
    limited = probe(limit=True)
    assert limited["limited"] >= 1, limited  # numpy's OpenBLAS took the limit
    # the work is the same; no CPU goes to another thread any more
    assert limited["others_s"] < 0.1 * free["others_s"], (free, limited)


def test_a_thread_count_below_one_is_refused() -> None:
    from stage.realtime.blas import limit_blas_threads

    with pytest.raises(ValueError, match="BLAS threads must be 1 or more, not 0"):
        limit_blas_threads(0)
