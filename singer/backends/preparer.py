"""The bank worker: a thread that does phrase-ahead voices' work beside the render loop.

DiffSinger renders whole phrases and held live notes' segments (seconds of work on a CPU);
the render loop only mixes what is ready. ``BankPreparer`` calls ``Ensemble.prepare_banks``
with the playout point in its own thread (onnxruntime leaves the GIL while it runs): at once
when a held note starts or ends (``Ensemble.bank_work``), else every ``POLL_S``. The synthesis
process runs one; so does a show that synthesises in a thread (``serve --synthesis thread``).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from singer.ensemble import Ensemble

log = logging.getLogger(__name__)

POLL_S = 0.02
"""How often the worker looks at playout when it has nothing to render."""
SWITCH_INTERVAL_S = 0.0005
"""The interpreter's thread switch interval while the worker runs (as the show sets it)."""


class BankPreparer:
    """Runs ``ensemble.prepare_banks(playout())`` in a thread until ``stop``."""

    def __init__(self, ensemble: Ensemble, playout: Callable[[], int]) -> None:
        self._ensemble = ensemble
        self._playout = playout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livesinger-prepare",
                                        daemon=True)

    def start(self) -> BankPreparer:
        """Start the thread; returns self. The render loop must get the interpreter back
        quickly from this thread's Python work (phonemes, f0 curves): the switch interval
        drops to ``SWITCH_INTERVAL_S`` in this process."""
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 1.0) -> None:
        """Ask the thread to end and wait up to ``timeout_s`` (a render under way finishes)."""
        self._stop.set()
        self._ensemble.bank_work.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        ensemble = self._ensemble
        while not self._stop.is_set():
            ensemble.bank_work.clear()
            if not ensemble.has_phrase_ahead_banks():
                ensemble.bank_work.wait(POLL_S)
                continue
            try:
                done = ensemble.prepare_banks(self._playout())
            except Exception:  # a phrase that fails is silence there, logged, not an end
                log.exception("preparing bank phrases failed")
                done = 0
            if not done:
                ensemble.bank_work.wait(POLL_S)
