"""``bench voice`` rows per backend (key ``backend``): RTF, phrase render time and live
note-on → first sample, measured through the backend contract on stand-in banks.

- ``builtin``: the parametric voice through ``BuiltinLine`` (one line per singer, not the
  live ensemble's batched pass: that one is the plain ``bench voice`` row).
- ``utau``: a CV bank recorded from the built-in voice (``utau.standin``), samples analysed
  in ``warm_up`` as a show does at load; ``voices`` lines rendered chunk by chunk.
- ``diffsinger``: the stand-in bank of the published networks' sizes (``diffsinger.standin``,
  random weights): the phrases of a song rendered phrase-ahead; ``preroll_s`` is how far
  ahead of playout the worker must start for no phrase to be late (0: real time from the
  first phrase on), ``xruns`` the phrases late when it starts with the backend's lookahead.

A live note's latency, for streaming backends, is the time of ``note_on`` plus the render
of its first chunk: what the audio thread would wait between the cue and the first sample.
For DiffSinger it is measured as the show plays a live note (``show_note_on_latencies``): a
render loop on a real-time clock (5 ms chunks, 4 ahead) beside the bank worker, the note
queued (``queue_note_on``) at the first chunk an edit can still change; the latency is from
the cue to the show time of the note's first sample (``first_segment_ms``: the first
segment's render alone, ``note_on`` called directly).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from singer.backends.contract import BackendLine, VoiceBackend
from singer.backends.diffsinger.backend import DiffSingerLine
from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.ensemble import LIVE_WAIT_MARGIN_S

CHUNK_SAMPLES = 240
"""5 ms: the live engine's chunk."""
NOTE_S = 0.5
LYRICS = ("ba", "la", "ma", "da", "na", "sa", "li", "mi", "lu", "a")
SMOKE_LYRICS = ("ba", "la", "ma", "a")
"""The smoke run's UTAU stand-in records only these (the song and live notes use them)."""


def song(seconds: float, phrase_notes: int = 4, gap_s: float = 0.25,
         lyrics: tuple[str, ...] = LYRICS) -> list[Note]:
    """Phrases of ``phrase_notes`` touching 0.5 s notes with gaps between, over ``seconds``."""
    notes: list[Note] = []
    t, k = 0.5, 0
    while t + NOTE_S <= seconds:
        for _ in range(phrase_notes):
            if t + NOTE_S > seconds:
                break
            lyric = lyrics[k % len(lyrics)]
            on = int(t * SAMPLE_RATE_HZ)
            notes.append(Note(on, on + int(NOTE_S * SAMPLE_RATE_HZ), 60.0 + (k * 3) % 10,
                              lyric, (lyric[:-1], lyric[-1]) if len(lyric) > 1 else (lyric,)))
            t, k = t + NOTE_S, k + 1
        t += gap_s
    return notes


def _ms_stats(times_s: list[float], key: str) -> dict[str, float]:
    ms = np.array(times_s) * 1000.0
    return {f"{key}_p50": round(float(np.percentile(ms, 50)), 3),
            f"{key}_p99": round(float(np.percentile(ms, 99)), 3)}


def note_on_latencies(backend: VoiceBackend, count: int,
                      lyrics: tuple[str, ...] = LYRICS) -> list[float]:
    """Seconds from ``note_on`` to the first chunk rendered, for ``count`` live notes."""
    line = backend.open_line("live")
    out = []
    for k in range(count):
        at = int((1.0 + 2.0 * k) * SAMPLE_RATE_HZ)
        start = time.perf_counter()
        live = line.note_on(at, 60.0 + k % 7, lyrics[k % len(lyrics)])
        line.render(at, CHUNK_SAMPLES)
        out.append(time.perf_counter() - start)
        line.note_off(live.id, at + int(0.4 * SAMPLE_RATE_HZ))
        line.render(at + CHUNK_SAMPLES, int(0.8 * SAMPLE_RATE_HZ))  # the note sung out
        line.forget_before(at)
    return out


EDIT_MARGIN_S = 0.004
"""As the show's pacer: a cue lands on the first chunk due at least this far ahead."""
LOOKAHEAD_CHUNKS = 4
"""As ``serve``: chunks rendered ahead of the clock."""


class _ShowLoop:
    """A render loop on a real-time clock and a bank worker, as the synthesis process runs
    one line: chunks rendered ``LOOKAHEAD_CHUNKS`` ahead (waiting for a held note's first
    segment only within the chunk's budget), ``prepare`` in a thread of its own."""

    def __init__(self, line: BackendLine, lookahead_samples: int) -> None:
        self.line = line
        self.lookahead = lookahead_samples
        self.t0 = time.perf_counter() + 0.2
        self.audio: dict[int, np.ndarray] = {}
        self.late_chunks = 0
        """Chunks whose render ended after their play time (xruns in a show)."""
        self.chunks = 0
        self.next = 0
        self._stop = threading.Event()
        self.wake = threading.Event()
        self._threads = [threading.Thread(target=self._render, daemon=True),
                         threading.Thread(target=self._prepare, daemon=True)]

    def due(self, sample: int) -> float:
        """``perf_counter`` time at which ``sample`` plays."""
        return self.t0 + sample / SAMPLE_RATE_HZ

    def editable(self) -> int:
        """The first chunk a cue made now can still change."""
        t = max(self.next, int((time.perf_counter() - self.t0) * SAMPLE_RATE_HZ))
        t += -t % CHUNK_SAMPLES
        while self.due(t) - time.perf_counter() < EDIT_MARGIN_S:
            t += CHUNK_SAMPLES
        return t

    def __enter__(self) -> _ShowLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _render(self) -> None:
        n = CHUNK_SAMPLES
        while not self._stop.is_set():
            t = self.next
            wait = self.due(t - LOOKAHEAD_CHUNKS * n) - time.perf_counter()
            if wait > 0:
                self._stop.wait(wait)
                continue
            budget = self.due(t) - time.perf_counter() - LIVE_WAIT_MARGIN_S
            if budget > 0 and self.line.has_queued:
                self.line.wait_ready(t, t + n, budget)
            self.audio[t] = self.line.render(t, n)
            self.chunks += 1
            if time.perf_counter() > self.due(t):
                self.late_chunks += 1
            self.next = t + n

    def _prepare(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            playout = int((time.perf_counter() - self.t0) * SAMPLE_RATE_HZ)
            if not self.line.prepare(max(0, playout) + self.lookahead):
                self.wake.wait(0.02)

    def first_sound(self, start: int, end: int, threshold: float = 1e-4) -> int | None:
        """The first show sample in ``[start, end)`` louder than ``threshold``."""
        for t in range(start - start % CHUNK_SAMPLES, end, CHUNK_SAMPLES):
            chunk = self.audio.get(t)
            if chunk is None:
                continue
            loud = np.nonzero(np.abs(chunk) > threshold)[0]
            if len(loud) and t + int(loud[0]) >= start:
                return t + int(loud[0])
        return None


def show_note_on_latencies(backend: VoiceBackend, count: int, lyrics: tuple[str, ...] = LYRICS,
                           hold_s: float = 0.4, gap_s: float = 0.3
                           ) -> tuple[list[float], int, int, int]:
    """(seconds from each cue to the show time of its note's first sample, notes never
    heard, chunks late, chunks rendered) for ``count`` live notes played one after another
    as the show plays them (each cue waits for the one before to be released, sung out)."""
    line = backend.open_line("live")
    out, missed = [], 0
    with _ShowLoop(line, backend.ahead.lookahead_samples) as show:
        time.sleep(0.3)
        for k in range(count):
            cue = time.perf_counter()
            at = show.editable()
            note = line.queue_note_on(at, 60.0 + k % 7, lyrics[k % len(lyrics)])
            show.wake.set()
            time.sleep(hold_s)
            line.queue_note_off(note, show.editable())
            show.wake.set()
            deadline = time.perf_counter() + 60.0
            while line.has_queued and time.perf_counter() < deadline:
                time.sleep(0.01)
            time.sleep(gap_s)  # the release sung out
            first = show.first_sound(at, show.next)
            if first is None:
                missed += 1
            else:
                out.append(show.due(first) - cue)
            line.forget_before(show.next - SAMPLE_RATE_HZ)
    return out, missed, show.late_chunks, show.chunks


def phrase_seconds(backend: VoiceBackend, lyrics: tuple[str, ...] = LYRICS
                   ) -> tuple[float, float]:
    """(render time s, audio s) of one 2 s phrase rendered whole by a fresh line."""
    notes = song(2.6, phrase_notes=4, lyrics=lyrics)[:4]
    line = backend.open_line("phrase", notes)
    start = time.perf_counter()
    line.prepare(line.end_sample)
    audio = line.render(0, line.end_sample)
    took = time.perf_counter() - start
    return took, len(audio) / SAMPLE_RATE_HZ


def streaming_row(backend: VoiceBackend, voices: int, seconds: float, note_ons: int,
                  lyrics: tuple[str, ...] = LYRICS) -> dict[str, object]:
    """RTF of ``voices`` lines rendered chunk by chunk, a phrase, live note-ons."""
    notes = song(seconds, lyrics=lyrics)
    lines: list[BackendLine] = [backend.open_line(f"s{i}", notes, seed=i) for i in range(voices)]
    n_chunks = int(seconds * SAMPLE_RATE_HZ) // CHUNK_SAMPLES
    times = []
    for k in range(n_chunks):
        start = time.perf_counter()
        for line in lines:
            line.render(k * CHUNK_SAMPLES, CHUNK_SAMPLES)
        times.append(time.perf_counter() - start)
    chunk_ms = 1000.0 * CHUNK_SAMPLES / SAMPLE_RATE_HZ
    phrase_s, phrase_audio_s = phrase_seconds(backend, lyrics)
    return {"chunk_ms": chunk_ms, **_ms_stats(times, "chunk_ms"),
            "rtf": round(float(np.mean(times)) * 1000.0 / chunk_ms, 4),
            "phrase_ms": round(phrase_s * 1000.0, 2), "phrase_audio_s": round(phrase_audio_s, 3),
            **_ms_stats(note_on_latencies(backend, note_ons, lyrics), "note_on_ms")}


def phrase_ahead_row(backend: VoiceBackend, seconds: float, note_ons: int,
                     live_notes: int | None = None) -> dict[str, object]:
    """A song rendered phrase by phrase as the prefetch worker would, the first segment of
    live notes, and ``live_notes`` (default ``note_ons``) live notes as the show plays them."""
    notes = song(seconds)
    line = backend.open_line("song", notes)
    if not isinstance(line, DiffSingerLine):
        raise TypeError("phrase_ahead_row measures a DiffSinger line")
    phrases = line.track.phrases
    ready, took = [], []
    start = time.perf_counter()
    for phrase in phrases:
        t0 = time.perf_counter()
        line.prepare(phrase[0].t_on - 2 * SAMPLE_RATE_HZ + 1)  # exactly this phrase
        took.append(time.perf_counter() - t0)
        ready.append(time.perf_counter() - start)
    mix_start = time.perf_counter()
    line.render(0, line.end_sample)
    mix_s = time.perf_counter() - mix_start
    starts = [(p[0].t_on - 2 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ for p in phrases]
    # playout starts ``preroll`` after the worker; phrase k must be ready by its lead-in
    preroll = max([0.0] + [r - max(0.0, s) for r, s in zip(ready, starts, strict=True)])
    lookahead_s = backend.ahead.lookahead_samples / SAMPLE_RATE_HZ
    late = sum(1 for r, s in zip(ready, starts, strict=True) if r > max(0.0, s) + lookahead_s)
    audio_s = line.end_sample / SAMPLE_RATE_HZ
    return {"phrases": len(phrases), "phrase_ms": round(1000.0 * float(np.mean(took)), 2),
            "phrase_ms_max": round(1000.0 * max(took), 2),
            "phrase_audio_s": round(audio_s / max(1, len(phrases)), 3),
            "rtf": round((sum(took) + mix_s) / audio_s, 4), "song_s": round(audio_s, 2),
            "lookahead_s": lookahead_s, "preroll_s": round(preroll, 3), "xruns": late,
            **(_ms_stats(note_on_latencies(backend, note_ons), "first_segment_ms")
               if note_ons else {}),
            **_live_row(backend, note_ons if live_notes is None else live_notes)}


def _live_row(backend: VoiceBackend, count: int) -> dict[str, object]:
    """``note_on_ms_p50``/``p99`` of live notes as the show plays them (see the module)."""
    if count <= 0:
        return {}
    latencies, missed, late, chunks = show_note_on_latencies(backend, count)
    return {**(_ms_stats(latencies, "note_on_ms") if latencies else {}),
            "live_notes": count, "live_notes_missed": missed, "live_late_chunks": late,
            "live_chunks": chunks}


def _devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _ort_devices() -> list[str]:
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    return ["cpu"] + (["cuda"] if cuda else [])


def run_backend_benchmarks(kinds: list[str], voices: int = 8, seconds: float = 5.0, *,
                           smoke: bool = False, workdir: Path | None = None,
                           steps: tuple[int, ...] = (), depth: float | None = None,
                           live_notes: int | None = None) -> Iterator[dict[str, object]]:
    """One row per backend and device (and voice count for streaming backends; and
    diffusion steps for DiffSinger: ``steps``, default its 20, one stand-in exported per
    count since the stand-in's cost is fixed at export; ``depth``: the shallow-diffusion
    depth asked for, where a bank has it; ``live_notes``: live notes played as the show
    plays them, default as many as the note-ons).

    ``smoke``: a short run for CI — 3 note-ons, a UTAU stand-in of 4 syllables, and the
    DiffSinger stand-in with one diffusion step instead of its default 20 (the networks keep
    their published sizes).
    """
    from singer.bench import machine_name

    note_ons = 3 if smoke else 50
    with tempfile.TemporaryDirectory(prefix="livesinger-bench-") as tmp:
        work = workdir or Path(tmp)
        for kind in kinds:
            base = {"bench": "voice", "backend": kind, "machine": machine_name()}
            if kind == "builtin":
                from singer.backends.builtin import BuiltinBackend
                from singer.synth import HarmonicNoiseSynth

                for device in _devices():
                    backend: VoiceBackend = BuiltinBackend(
                        "soprano", HarmonicNoiseSynth(device=device))
                    for n in sorted({1, voices}):
                        yield {**base, "voices": n, "device": device, "threads": 1,
                               **streaming_row(backend, n, seconds, note_ons)}
            elif kind == "utau":
                from singer.backends.discovery import describe_bank
                from singer.backends.utau.backend import UtauBackend
                from singer.backends.utau.standin import build_standin_bank

                lyrics = SMOKE_LYRICS if smoke else LYRICS
                folder = build_standin_bank(work / "utau-standin", lyrics)
                utau = UtauBackend.load(folder, describe_bank(folder), cache_dir=work / "cache")
                start = time.perf_counter()
                utau.warm_up()
                warm = round(time.perf_counter() - start, 3)
                for n in sorted({1, voices}):
                    yield {**base, "voices": n, "device": "cpu", "threads": 1,
                           "warm_up_s": warm,
                           **streaming_row(utau, n, seconds, note_ons, lyrics)}
            elif kind == "diffsinger":
                from singer.backends.diffsinger.backend import DiffSingerBackend
                from singer.backends.diffsinger.render import DEFAULT_STEPS, RenderSettings
                from singer.backends.diffsinger.standin import build_standin_bank as build_ds

                for n_steps in steps or ((1,) if smoke else (DEFAULT_STEPS,)):
                    folder = build_ds(work / f"ds-standin-{n_steps}", n_steps=n_steps)
                    settings = RenderSettings(steps=n_steps) if depth is None else \
                        RenderSettings(steps=n_steps, depth=depth)
                    for device in _ort_devices():
                        ds = DiffSingerBackend.load(folder, device=device, settings=settings)
                        start = time.perf_counter()
                        ds.warm_up()
                        warm = round(time.perf_counter() - start, 3)
                        yield {**base, "voices": 1, "device": device, "steps": n_steps,
                               "depth": settings.depth, "threads": os.cpu_count() or 1,
                               "warm_up_s": warm,
                               **phrase_ahead_row(
                                   ds, seconds, note_ons if live_notes is None else live_notes,
                                   live_notes)}
            else:
                raise ValueError(f"unknown backend {kind!r} (builtin, utau, diffsinger)")
