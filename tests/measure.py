"""Measurements the tests assert on, made with estimators the project did not write, and
what a real-time test may excuse: a rare xrun, and time the machine did not run us at all."""

from __future__ import annotations

import threading
import time

import numpy as np

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.follow.evaluate import band_energy_onset as band_energy_onset  # (bench duet's too)


def f0_track(audio: np.ndarray, floor_hz: float = 75.0, ceiling_hz: float = 1100.0,
             step_s: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    """(times s, f0 Hz with 0 for unvoiced) from Praat's autocorrelation pitch."""
    import parselmouth

    snd = parselmouth.Sound(audio.astype(np.float64), SAMPLE_RATE_HZ)
    pitch = snd.to_pitch(time_step=step_s, pitch_floor=floor_hz, pitch_ceiling=ceiling_hz)
    return pitch.xs(), pitch.selected_array["frequency"]


def note_cents_errors(audio: np.ndarray, notes: list[Note] | tuple[Note, ...],
                      min_body_s: float = 0.2) -> list[float]:
    """Per note (long enough): median sung f0 over the middle half, minus the note, in cents."""
    midis = [n.pitch_midi for n in notes]
    hz = 440.0 * 2 ** ((np.array(midis) - 69) / 12)
    times, f0 = f0_track(audio, floor_hz=max(60.0, hz.min() / 2), ceiling_hz=hz.max() * 1.5)
    errors = []
    for note, target in zip(notes, hz, strict=True):
        dur = (note.t_off - note.t_on) / SAMPLE_RATE_HZ
        if dur < min_body_s:
            continue
        a = note.t_on / SAMPLE_RATE_HZ + dur * 0.25
        b = note.t_on / SAMPLE_RATE_HZ + dur * 0.75
        sel = (times >= a) & (times <= b) & (f0 > 0)
        if sel.sum() < 3:
            errors.append(float("inf"))
            continue
        errors.append(float(1200 * np.log2(np.median(f0[sel]) / target)))
    return errors


def formant_peaks(audio: np.ndarray, start_s: float, end_s: float,
                  above_hz: float = 150.0) -> list[float]:
    """Peaks (Hz) above ``above_hz`` of WORLD's CheapTrick envelope over a sustained segment."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pyworld

    x = audio.astype(np.float64)
    f0, t = pyworld.harvest(x, SAMPLE_RATE_HZ, f0_floor=70, f0_ceil=1000, frame_period=10)
    sp = pyworld.cheaptrick(x, f0, t, SAMPLE_RATE_HZ, fft_size=4096)
    freqs = np.arange(sp.shape[1]) * SAMPLE_RATE_HZ / 4096
    sel = (t > start_s) & (t < end_s)
    env_db = 10 * np.log10(np.exp(np.mean(np.log(sp[sel] + 1e-30), axis=0)))
    peaks = []
    for i in range(1, len(env_db) - 1):
        if env_db[i] > env_db[i - 1] and env_db[i] >= env_db[i + 1] and freqs[i] > above_hz:
            a, b, c = env_db[i - 1], env_db[i], env_db[i + 1]
            peaks.append(freqs[i] + 0.5 * (a - c) / (a - 2 * b + c) * (freqs[1] - freqs[0]))
    return peaks


def xrun_budget(chunks_played: int, percent: int = 1) -> int:
    """Xruns a functional test tolerates: a rare late chunk on a loaded shared machine is a
    benchmark figure (`bench osc`, `bench webrtc`), not a functional failure; a pattern of
    them (over ``percent`` % of the chunks played, 1 % unless the test says why more, and
    over three in a short show) is. The shared machine's speed varies about twofold, the same
    one within an hour (its ``sum(range(3e7))`` is the run's last line: ``tests/machine.py``);
    at its slowest a one-second show had 4 late chunks, a few seconds' 2-3."""
    return max(3, chunks_played * percent // 100)


class StallWatch:
    """A thread that asks to wake every 2 ms and notes the stretches in which this process was
    not run at all (wall time passed, the process's CPU time hardly did): the machine's doing,
    not the viewers'. A stretch spent busy in this process (holding the GIL, say) is not
    counted: that would be the engine's fault."""

    def __init__(self) -> None:
        self.stalled_s = 0.0
        self.stretches: list[tuple[float, float]] = []
        """Each stall as (``time.time()`` it began, seconds): to pair with what a peer saw."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last, last_cpu = time.monotonic(), time.process_time()
        while not self._stop.wait(0.002):
            now, cpu = time.monotonic(), time.process_time()
            if now - last > 0.03 and cpu - last_cpu < 0.3 * (now - last):
                self.stalled_s += now - last
                self.stretches.append((time.time() - (now - last), now - last))
            last, last_cpu = now, cpu

    def __enter__(self) -> StallWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def longer_than(self, seconds: float) -> int:
        """How many stalls lasted longer than ``seconds``."""
        return sum(1 for _, d in self.stretches if d > seconds)
