"""The render report: a picture of what the singer will do, checked before the show.

Piano roll of the score's notes with their lyrics, the f0 measured from the rendered audio on
top (YIN, in numpy), and the loudness envelope below. ``analyse`` gives the numbers the figure
shows; ``write_report`` draws them with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

from singer.contracts import SAMPLE_RATE_HZ, Note
from singer.score import Score

ANALYSIS_RATE_HZ = 24_000
"""Audio is halved to this rate before pitch tracking (enough for f0 up to 1.2 kHz)."""

YIN_THRESHOLD = 0.1
"""First dip of the cumulative mean normalized difference under this is the period."""

HALF_PERIOD_DIP = 0.06
"""A first dip shallower than this is checked against the dip at twice its lag."""

VOICED_MAX_DIP = 0.35
"""Frames whose best dip stays above this are unvoiced."""

SILENCE_DB = -50.0
"""Frames this far below the loudest frame are silent (no f0)."""

FLOOR_DB = -90.0
"""Frames below this level (dBFS) are silent whatever the loudest one."""


@dataclass(frozen=True)
class Analysis:
    """What the report measured: f0 and loudness per frame, and each note's pitch error.

    ``f0_hz`` is 0 where unvoiced; ``note_cents`` is the median error (cents) of the sung f0
    over the middle half of each note of the first part, NaN where too short or unvoiced.
    """

    times_s: np.ndarray
    f0_hz: np.ndarray
    loudness_db: np.ndarray
    note_cents: np.ndarray

    @property
    def median_abs_cents(self) -> float:
        """Median absolute pitch error over the measured notes (NaN when none)."""
        ok = np.isfinite(self.note_cents)
        return float(np.median(np.abs(self.note_cents[ok]))) if ok.any() else float("nan")


def measure_f0(audio: np.ndarray, floor_hz: float = 60.0, ceiling_hz: float = 1100.0,
               step_s: float = 0.01, sample_rate_hz: int = SAMPLE_RATE_HZ
               ) -> tuple[np.ndarray, np.ndarray]:
    """(frame centre times s, f0 Hz with 0 where unvoiced) of mono ``audio`` by YIN.

    YIN (de Cheveigné & Kawahara 2002): the difference function by FFT, its cumulative mean
    normalization, the first dip under ``YIN_THRESHOLD`` refined by parabolic interpolation.
    """
    x = np.asarray(audio, dtype=np.float64)
    factor = max(1, sample_rate_hz // ANALYSIS_RATE_HZ)
    if factor > 1:
        x = signal.resample_poly(x, 1, factor)
    sr = sample_rate_hz / factor
    max_lag = int(math.ceil(sr / floor_hz)) + 1
    min_lag = max(2, int(sr / ceiling_hz))
    window = max_lag  # integrate over one longest period
    hop = max(1, int(round(step_s * sr)))
    n_frames = max(0, (len(x) - window - max_lag) // hop + 1)
    times = (np.arange(n_frames) * hop + window / 2) / sr
    f0 = np.zeros(n_frames)
    if n_frames == 0:
        return times, f0
    level = _frame_db(x, hop, window, n_frames)
    loud = level > max(level.max() + SILENCE_DB, FLOOR_DB)
    n_fft = 1 << int(math.ceil(math.log2(window + max_lag)))
    sq = np.concatenate([[0.0], np.cumsum(x * x)])
    lags = np.arange(max_lag + 1)
    for start in range(0, n_frames, 512):
        idx = np.arange(start, min(n_frames, start + 512))
        base = idx[:, None] * hop
        seg = x[base + np.arange(window + max_lag)]
        spec_full = np.fft.rfft(seg, n_fft)
        spec_head = np.fft.rfft(seg[:, :window], n_fft)
        cross = np.fft.irfft(spec_full * np.conj(spec_head), n_fft)[:, :max_lag + 1]
        e0 = (sq[base[:, 0] + window] - sq[base[:, 0]])[:, None]
        e_lag = sq[base + lags + window] - sq[base + lags]
        diff = np.maximum(e0 + e_lag - 2.0 * cross, 0.0)
        cum = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, max_lag + 1)
        cmnd = np.ones_like(diff)
        cmnd[:, 1:] = diff[:, 1:] / np.maximum(cum, 1e-12)
        for row, frame in enumerate(idx):
            if loud[frame]:
                f0[frame] = _pick_period(cmnd[row], min_lag, max_lag, sr)
    # Single-frame octave slips (at consonants) against a 5-frame median.
    smooth = ndimage.median_filter(f0, size=5, mode="nearest")
    slip = (f0 > 0) & (smooth > 0) & (np.abs(np.log2(np.maximum(f0, 1e-9) / np.maximum(
        smooth, 1e-9))) > 0.5)
    f0[slip] = smooth[slip]
    return times, f0


def _pick_period(cmnd: np.ndarray, min_lag: int, max_lag: int, sr: float) -> float:
    """f0 from one frame's normalized difference (0 when no clear period)."""
    d = cmnd[min_lag:max_lag]
    under = np.nonzero(d < YIN_THRESHOLD)[0]
    if len(under):
        i = int(under[0])
        while i + 1 < len(d) and d[i + 1] < d[i]:
            i += 1
    else:
        i = int(np.argmin(d))
        if d[i] > VOICED_MAX_DIP:
            return 0.0
    # A strong second harmonic leaves a shallow dip at half the period: when the dip at
    # twice the lag is much deeper, the period is that one.
    j = 2 * i + min_lag
    if d[i] > HALF_PERIOD_DIP and j + 2 < len(d):
        k = j - 2 + int(np.argmin(d[j - 2:j + 3]))
        if d[k] < 0.4 * d[i]:
            i = k
    tau = float(i + min_lag)
    if 0 < i < len(d) - 1:
        a, b, c = d[i - 1], d[i], d[i + 1]
        denom = a - 2 * b + c
        if denom > 0:
            tau += 0.5 * (a - c) / denom
    return sr / tau


def _frame_db(x: np.ndarray, hop: int, window: int, n_frames: int) -> np.ndarray:
    sq = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(n_frames) * hop
    power = (sq[starts + window] - sq[starts]) / window
    return 10 * np.log10(np.maximum(power, 1e-12))


def loudness_db(audio: np.ndarray, step_s: float = 0.01, window_s: float = 0.03,
                sample_rate_hz: int = SAMPLE_RATE_HZ) -> tuple[np.ndarray, np.ndarray]:
    """(frame centre times s, RMS level in dBFS) of ``audio`` every ``step_s``."""
    x = np.asarray(audio, dtype=np.float64)
    hop, window = int(step_s * sample_rate_hz), int(window_s * sample_rate_hz)
    n_frames = max(0, (len(x) - window) // hop + 1)
    times = (np.arange(n_frames) * hop + window / 2) / sample_rate_hz
    return times, _frame_db(x, hop, window, n_frames) if n_frames else np.zeros(0)


def note_cents(times: np.ndarray, f0: np.ndarray, notes: tuple[Note, ...] | list[Note],
               min_body_s: float = 0.15) -> np.ndarray:
    """Per note: median sung f0 over the middle half minus the note, in cents (NaN: none)."""
    out = np.full(len(notes), np.nan)
    for k, note in enumerate(notes):
        on, off = note.t_on / SAMPLE_RATE_HZ, note.t_off / SAMPLE_RATE_HZ
        if off - on < min_body_s:
            continue
        sel = (times >= on + 0.25 * (off - on)) & (times <= on + 0.75 * (off - on)) & (f0 > 0)
        if sel.sum() >= 3:
            target = 440.0 * 2 ** ((note.pitch_midi - 69) / 12)
            out[k] = 1200 * math.log2(float(np.median(f0[sel])) / target)
    return out


def analyse(score: Score, audio: np.ndarray) -> Analysis:
    """Measure ``audio`` (the render of ``score``) against the notes of its first part."""
    notes = [n for p in score.parts for n in p.notes]
    hz = [440.0 * 2 ** ((n.pitch_midi - 69) / 12) for n in notes] or [220.0]
    times, f0 = measure_f0(audio, floor_hz=max(50.0, min(hz) / 2), ceiling_hz=max(hz) * 1.5)
    _, level = loudness_db(audio)
    level = level[:len(times)] if len(level) >= len(times) else np.pad(
        level, (0, len(times) - len(level)), constant_values=-120.0)
    end = len(audio)
    first = [n for n in score.notes if n.t_off <= end]
    return Analysis(times, f0, level, note_cents(times, f0, first))


def write_report(score: Score, audio: np.ndarray, path: str | Path, *, subtitle: str = "",
                 progress: Callable[[str], None] | None = None) -> Analysis:
    """Draw the report of ``audio`` (rendered from ``score``) to a PNG; returns the analysis."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import Rectangle

    say = progress or (lambda _msg: None)
    say("measuring the sung pitch")
    result = analyse(score, audio)
    say("drawing the report")
    duration = max(len(audio) / SAMPLE_RATE_HZ, 1.0)
    width = float(np.clip(duration * 0.55, 10.0, 60.0))
    fig, (roll, loud) = plt.subplots(2, 1, figsize=(width, 7.5), sharex=True,
                                     gridspec_kw={"height_ratios": [4, 1]})
    notes = [n for p in score.parts for n in p.notes]
    pitches = [n.pitch_midi for n in notes]
    lo, hi = min(pitches) - 3, max(pitches) + 3
    colours = ["#7aa6d8", "#e0a86a", "#8cc48a", "#c99ad6"]
    label = _lyric_labeller(score.language)
    for pi, part in enumerate(score.parts):
        for note in part.notes:
            on = note.t_on / SAMPLE_RATE_HZ
            dur = note.duration_samples / SAMPLE_RATE_HZ
            roll.add_patch(Rectangle((on, note.pitch_midi - 0.4), dur, 0.8,
                                     facecolor=colours[pi % len(colours)], edgecolor="#33557a",
                                     linewidth=0.6, alpha=0.75))
            if not note.is_melisma:
                roll.text(on, note.pitch_midi - 0.65, label(note.lyric), fontsize=8,
                          va="top", ha="left", color="#222222", clip_on=True)
    _bar_lines(roll, score, duration)
    voiced = result.f0_hz > 0
    sung = np.full(result.f0_hz.shape, np.nan)
    sung[voiced] = 69 + 12 * np.log2(result.f0_hz[voiced] / 440.0)
    roll.plot(result.times_s, sung, color="#c0392b", linewidth=1.2, label="sung f0 (measured)")
    roll.set_ylim(lo, hi)
    roll.set_xlim(0, duration)
    ticks = range(int(math.ceil(lo)), int(hi) + 1)
    roll.set_yticks([t for t in ticks if t % 12 in (0, 4, 7)])
    roll.set_yticklabels([_note_name(t) for t in ticks if t % 12 in (0, 4, 7)])
    roll.grid(axis="y", color="#dddddd", linewidth=0.5)
    roll.set_ylabel("pitch")
    roll.legend(loc="upper right", fontsize=8)
    err = result.median_abs_cents
    roll.set_title(f"{label(score.title)} — {subtitle + ', ' if subtitle else ''}"
                   f"median pitch error {err:.1f} cents over "
                   f"{int(np.isfinite(result.note_cents).sum())} notes", fontsize=11)
    loud.plot(result.times_s, result.loudness_db, color="#2c3e50", linewidth=0.9)
    loud.set_ylim(max(-80.0, float(np.min(result.loudness_db, initial=-80.0))),
                  float(np.max(result.loudness_db, initial=0.0)) + 3)
    loud.set_ylabel("loudness dBFS")
    loud.set_xlabel("time (s)")
    loud.grid(color="#eeeeee", linewidth=0.5)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return result


def _bar_lines(ax: object, score: Score, duration_s: float) -> None:
    """Thin vertical lines at the bar starts (from the score's time signatures)."""
    sigs = list(score.time_signatures)
    if not sigs:
        return
    tm = score.tempo_map
    end_beat = tm.sample_to_beat(duration_s * SAMPLE_RATE_HZ)
    for k, sig in enumerate(sigs):
        stop = sigs[k + 1].beat if k + 1 < len(sigs) else end_beat
        bar = sig.numerator * 4.0 / sig.denominator
        beat = sig.beat
        while beat <= stop and bar > 0:
            ax.axvline(tm.beat_to_sample(beat) / SAMPLE_RATE_HZ,  # type: ignore[attr-defined]
                       color="#bbbbbb", linewidth=0.6, zorder=0)
            beat += bar


def _lyric_labeller(language: str) -> Callable[[str], str]:
    """Lyrics as drawn: as written when a font has the glyphs, else romanized (pinyin)."""
    if language != "zh" or _has_cjk_font():
        return lambda text: text

    from pypinyin import lazy_pinyin

    return lambda text: " ".join(lazy_pinyin(text))


def _has_cjk_font() -> bool:
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in ("Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei", "Source Han Sans SC",
                 "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei"):
        if name in names:
            from matplotlib import rcParams

            rcParams["font.sans-serif"] = [name, *rcParams["font.sans-serif"]]
            return True
    return False


def _note_name(midi: int) -> str:
    names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    return f"{names[midi % 12]}{midi // 12 - 1}"
