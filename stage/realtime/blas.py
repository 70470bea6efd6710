"""numpy's BLAS kept to one thread in the show's processes.

numpy's bundled OpenBLAS starts a worker thread per extra core when it is imported, and a
worker that has been handed work busy-waits for the next (measured in ``bench webrtc``'s
engine: an unnamed thread beside the event loop used more CPU than the loop itself, ~0.2 of
a core on the 2-core machine, taken from the loop, the synthesis and a local browser). The
show's matrix work is small and already runs in real time on one thread, as torch's does
(``stage.serve.realtime_threads``).
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

_SETTERS = ("openblas_set_num_threads64_", "openblas_set_num_threads")
"""The C setters (``int`` by value) of numpy's ILP64 build and of a plain OpenBLAS."""


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries this process has loaded (from its memory map)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/"))


def limit_blas_threads(threads: int = 1) -> int:
    """Ask every OpenBLAS loaded here to use ``threads`` threads, and processes started from
    now on (the synthesis process) to start with that many. Returns how many libraries took
    it (0 where there is no OpenBLAS or no ``/proc``: nothing else to do then)."""
    if threads < 1:
        raise ValueError(f"BLAS threads must be 1 or more, not {threads}")
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)  # read by children's numpy at import
    limited = 0
    for path in _loaded_openblas():
        try:
            library = ctypes.CDLL(path)
        except OSError as err:
            log.debug("cannot open %s: %s", path, err)
            continue
        for name in _SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                limited += 1
                break
    return limited
