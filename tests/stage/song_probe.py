"""A score loader for tests that notes which process parsed the song (it imports no more
than ``singer.scores.load``, so a worker process can run it)."""

from __future__ import annotations

import os
from dataclasses import replace

from singer.score import Score
from singer.scores.load import load_score


def load_noting_process(ref: str) -> Score:
    """``load_score(ref)`` with a notice naming the process that parsed it."""
    score = load_score(ref)
    return replace(score, notices=(*score.notices, f"parsed in process {os.getpid()}"))
