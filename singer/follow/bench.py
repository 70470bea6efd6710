"""``bench duet``: what following a performer costs and how close the idol stays.

Two kinds of row (one JSON object each):

- ``compute``: the follower's compute per 5 ms chunk of a sung performance (p50/p99/max),
  and onset → decision (event issued) latency;
- one per tempo curve of the corpus (``singer.follow.corpus.CURVES``) and input (the
  performer sung, with vibrato and noise at 20 dB SNR; or MIDI note-ons with 2 % deleted and
  2 % wrong notes inserted): the duet run causally (``singer.follow.duet``), the idol's
  onsets found in its own audio against the beats the performer really reached. Median and
  p95 asynchrony outside the two bars after each tempo change, the follower's tempo error
  from 4 beats after a step, the bars until every idol note is back in place after a skipped
  bar, each with its target.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.follow import corpus
from singer.follow.duet import (
    CHUNK_SAMPLES,
    DuetResult,
    DuetSession,
    duet_from_audio,
    duet_from_midi,
)
from singer.follow.evaluate import bars_to_recover, idol_asynchrony_by_beat, tempo_error

ASYNC_TARGETS_MS = {"audio": (30.0, 80.0), "midi": (20.0, 50.0)}
"""(median, p95) asynchrony targets per input (issue 10)."""
TEMPO_TARGET = 0.05
"""Tempo within ±5 % from 4 beats after a step change."""
RECOVER_TARGET_BARS = 2.0
"""Back in place within 2 bars after a skipped bar."""
INPUTS = ("audio", "midi")
METER = 4
Progress = Callable[[str], None]


def _quiet(_line: str) -> None:
    pass


def compute_row(notes: int = 32) -> dict[str, object]:
    """The follower alone fed the tenor singing ``notes`` notes at 110 bpm in 5 ms chunks:
    its compute per chunk and the onset → decision latency of its events."""
    from singer.follow.follower import ScoreFollower
    from singer.follow.part import FollowedPart
    from singer.render import render_score
    from singer.score import SourceNote, assemble_score
    from singer.tempo import TempoChange, TempoMap

    pitches = [60, 62, 64, 65, 67, 65, 64, 62] * (notes // 8 + 1)
    source = [SourceNote(float(k), k + 0.95, float(p), "他卡怕撒"[k % 4])
              for k, p in enumerate(pitches[:notes])]
    score = assemble_score("bench", TempoMap([TempoChange(0.0, 110.0)]),
                           {"performer": source})
    audio = render_score(score, "tenor")
    follower = ScoreFollower(FollowedPart.of(score, "performer"))
    chunk = SAMPLE_RATE_HZ // 200
    costs = []
    latencies = []
    for i in range(0, len(audio), chunk):
        t0 = time.perf_counter()
        for state in follower.feed_audio(audio[i:i + chunk]):
            latencies.append((state.decided_sample - state.sample) / SAMPLE_RATE_HZ * 1e3)
        costs.append((time.perf_counter() - t0) * 1e3)
    c = np.array(costs)
    return {"bench": "duet", "row": "compute", "chunk_ms": 5.0, "chunks": len(c),
            "compute_ms_p50": round(float(np.percentile(c, 50)), 4),
            "compute_ms_p99": round(float(np.percentile(c, 99)), 4),
            "compute_ms_max": round(float(c.max()), 4), "compute_target_ms_p99": 1.0,
            "decision_latency_ms_median": round(float(np.median(latencies)), 1)
            if latencies else None,
            "events": len(follower.history), "notes": len(source), **_machine()}


def _machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "machine": platform.machine(),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def _run(case: corpus.CurveCase, perf: corpus.Performance, kind: str, draw: int
         ) -> DuetResult:
    session = DuetSession(case.score(), "performer", midi=kind == "midi")
    if kind == "midi":
        return duet_from_midi(session, corpus.midi_events(perf, seed=3 + draw))
    n = CHUNK_SAMPLES
    chunks = (AudioChunk(i, perf.audio[i:i + n]) for i in range(0, len(perf.audio), n))
    return duet_from_audio(session, chunks)


def curve_row(case: corpus.CurveCase, kind: str, draws: int = 3) -> dict[str, object]:
    """One tempo curve, one input: the duet run causally (MIDI: ``draws`` draws of the
    deleted and inserted notes), measured in the idol's audio."""
    score = case.score()
    perf = case.perform(sing=kind == "audio")
    settle = case.settle(METER)
    values: list[float] = []
    missing = 0
    tempo_errors: list[float] = []
    recoveries: list[float | None] = []
    decisions: list[float] = []
    runs = draws if kind == "midi" else 1
    for draw in range(runs):
        result = _run(case, perf, kind, draw)
        by_beat = idol_asynchrony_by_beat(score, perf, result.audio)
        kept = [v for b, v in by_beat if not any(a <= b < z for a, z in settle)]
        values += [v for v in kept if np.isfinite(v)]
        missing += sum(1 for v in kept if not np.isfinite(v))
        if case.step_beat is not None:
            err = tempo_error(result.log, perf, case.step_beat + 4.0)
            if err is not None:
                tempo_errors.append(err)
        if case.skip_bar is not None:
            back = float((case.skip_bar + 1) * METER)
            recoveries.append(bars_to_recover(by_beat, back, ASYNC_TARGETS_MS[kind][1], METER))
        decisions += [(s.decided_sample - s.sample) * 1e3 / SAMPLE_RATE_HZ for s in result.log]
    target_med, target_p95 = ASYNC_TARGETS_MS[kind]
    a = np.abs(np.array(values)) if values else np.array([np.nan])
    med, p95 = float(np.median(a)), float(np.percentile(a, 95))
    row: dict[str, object] = {
        "bench": "duet", "row": "curve", "curve": case.name, "input": kind,
        "performer_bpm": case.bpm, "score_bpm": 100.0, "draws": runs,
        "idol_notes": len(values), "idol_notes_missing": missing,
        "async_ms_median": round(med, 1), "async_ms_p95": round(p95, 1),
        "async_target_ms_median": target_med, "async_target_ms_p95": target_p95,
        "async_met": bool(med <= target_med and p95 <= target_p95),
    }
    if case.step_beat is not None:
        worst = max(tempo_errors) if tempo_errors else None
        row |= {"tempo_error_pct_from_4_beats": None if worst is None
                else round(100 * worst, 2),
                "tempo_target_pct": 100 * TEMPO_TARGET,
                "tempo_met": worst is not None and worst <= TEMPO_TARGET}
    if case.skip_bar is not None:
        known = [r for r in recoveries if r is not None]
        worst_back = max(known) if len(known) == len(recoveries) and known else None
        row |= {"bars_to_recover": worst_back, "recover_target_bars": RECOVER_TARGET_BARS,
                "recover_met": worst_back is not None and worst_back <= RECOVER_TARGET_BARS}
    if kind == "audio" and decisions:
        row["decision_latency_ms_median"] = round(float(np.median(decisions)), 1)
    return row | _machine()


def run_duet_benchmarks(*, smoke: bool = False, curves: tuple[str, ...] | None = None,
                        inputs: tuple[str, ...] = INPUTS, draws: int = 3,
                        progress: Progress = _quiet) -> Iterator[dict[str, object]]:
    """The compute row, then one row per curve and input. ``smoke``: a short compute run and
    the step curve on 8 bars, MIDI, one draw (CI)."""
    import torch

    torch.set_num_threads(1)  # as the show runs its voice (stage/serve.py)
    cases = list(corpus.CURVES)
    if smoke:
        cases = [replace(next(c for c in cases if c.name == "step"), bars=8)]
        inputs, draws = ("midi",), 1
    elif curves:
        unknown = sorted(set(curves) - {c.name for c in cases})
        if unknown:
            raise ValueError(f"unknown curve(s) {', '.join(unknown)}; curves: "
                             f"{', '.join(c.name for c in corpus.CURVES)}")
        cases = [c for c in cases if c.name in curves]
    runs = [(c, kind) for c in cases for kind in inputs]
    progress(f"bench duet: follower compute ({'smoke' if smoke else 'full'})")
    yield compute_row(12 if smoke else 32)
    for k, (case, kind) in enumerate(runs, 1):
        progress(f"bench duet: [{k}/{len(runs)}] {case.name}, {kind}")
        t0 = time.monotonic()
        row = curve_row(case, kind, draws)
        row["wall_s"] = round(time.monotonic() - t0, 1)
        yield row


def table(rows: list[dict[str, object]]) -> str:
    """The curve rows as a Markdown table (docs/benchmarks.md), targets beside the figures."""
    lines = ["| curve | input | idol notes | median ms | p95 ms | target | tempo after step |"
             " bars to recover |",
             "|---|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        if r.get("row") != "curve":
            continue
        tempo = "" if "tempo_error_pct_from_4_beats" not in r else \
            f"{r['tempo_error_pct_from_4_beats']} % (±5 %)"
        back = "" if "bars_to_recover" not in r else f"{r['bars_to_recover']} (≤ 2)"
        mark = "" if r["async_met"] else " missed"
        lines.append(f"| {r['curve']} | {r['input']} | {r['idol_notes']} | "
                     f"{r['async_ms_median']} | {r['async_ms_p95']} | "
                     f"{r['async_target_ms_median']:g} / {r['async_target_ms_p95']:g}{mark} | "
                     f"{tempo} | {back} |")
    return "\n".join(lines)
