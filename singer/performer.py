"""The Performer: turns a line of notes into the voice's per-hop controls.

Everything a singer does between the notes lives here: consonants before the beat (from the
timeline), coarticulation (smoothed formant tracks), pitch transitions with preparation and
overshoot, vibrato with a delayed onset, slight jitter and shimmer, breath. The result is a
``ControlTrack`` computed once per song, so the audio hot path only slices arrays.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage, signal

from singer.contracts import DEFAULT_HOP_SAMPLES, SAMPLE_RATE_HZ, ControlFrame, Note
from singer.phonemes import spec
from singer.synth import SynthControls
from singer.timeline import Segment, build_timeline
from singer.voices import VoiceProfile

TAIL_S = 0.3
FORMANT_SMOOTH_S = 0.05
AMP_SMOOTH_S = 0.02
ASPIRATION_LEVEL = 0.3
FRICATION_GAIN = 1.3


@dataclass(frozen=True, slots=True)
class Expression:
    """How a singer sings on top of the notes (live-adjustable, smoothed when changed).

    Depths and levels multiply the voice's defaults: ``vibrato_depth=1`` is the voice's own
    vibrato; ``formant_shift`` scales every formant (1.0 = none).
    """

    vibrato_depth: float = 1.0
    vibrato_rate: float = 1.0
    breathiness: float = 1.0
    tension: float = 0.5
    volume: float = 1.0
    formant_shift: float = 1.0


ExpressionEvent = tuple[int, str, float]
"""(show sample, expression field, new value): changes glide over ``EXPRESSION_GLIDE_S``."""

EXPRESSION_GLIDE_S = 0.08


def expression_curves(base: Expression, events: list[ExpressionEvent] | tuple[ExpressionEvent, ...],
                      t: np.ndarray) -> dict[str, np.ndarray]:
    """Each expression field per frame time ``t``: steps from ``events`` turned into glides."""
    glide = EXPRESSION_GLIDE_S * SAMPLE_RATE_HZ
    curves = {}
    for name in Expression.__dataclass_fields__:
        value = np.full(t.shape, float(getattr(base, name)))
        for sample, _, new in sorted(e for e in events if e[1] == name):
            w = np.clip((t - sample) / glide, 0.0, 1.0)
            value = value + (new - value) * w
        curves[name] = value
    return curves


@dataclass
class ControlTrack:
    """Per-hop controls of one singer; its frame ``j`` is show frame ``first_frame + j``.

    Show frame ``i`` describes show sample ``i * hop``.
    """

    hop: int
    f0_hz: np.ndarray
    amp: np.ndarray
    formant_hz: np.ndarray
    formant_bw_hz: np.ndarray
    formant_level: np.ndarray
    tension: np.ndarray
    breath: np.ndarray
    fric_amp: np.ndarray
    fric_hz: np.ndarray
    fric_bw_hz: np.ndarray
    vibrato_cents: np.ndarray
    phoneme_id: np.ndarray
    phoneme_names: list[str] = field(default_factory=list)
    first_frame: int = 0

    @property
    def n_frames(self) -> int:
        """Number of frames in the track."""
        return int(self.f0_hz.shape[0])

    @property
    def end_sample(self) -> int:
        """Show sample after which the track is silent."""
        return (self.first_frame + self.n_frames) * self.hop

    _SERIES = ("f0_hz", "amp", "formant_hz", "formant_bw_hz", "formant_level", "tension",
               "breath", "fric_amp", "fric_hz", "fric_bw_hz")

    def window(self, first: int, count: int) -> dict[str, np.ndarray]:
        """Show frames ``[first, first + count)`` as arrays; outside the track it is silent."""
        rel = np.arange(first, first + count) - self.first_frame
        idx = np.clip(rel, 0, self.n_frames - 1)
        out = {name: getattr(self, name)[idx] for name in self._SERIES}
        outside = (rel < 0) | (rel >= self.n_frames)
        if outside.any():
            out["amp"] = np.where(outside, 0.0, out["amp"])
            out["breath"] = np.where(outside, 0.0, out["breath"])
            out["fric_amp"] = np.where(outside, 0.0, out["fric_amp"])
        return out

    def frame(self, show_frame: int) -> ControlFrame:
        """The ``ControlFrame`` contract for a show frame (phoneme mix from its neighbours)."""
        i = int(np.clip(show_frame - self.first_frame, 0, self.n_frames - 1))
        lo, hi = max(0, i - 2), min(self.n_frames, i + 3)
        weights: dict[str, float] = {}
        kernel = np.hanning(7)[1:-1]
        for j in range(lo, hi):
            pid = int(self.phoneme_id[j])
            if pid >= 0:
                name = self.phoneme_names[pid]
                weights[name] = weights.get(name, 0.0) + float(kernel[j - i + 2])
        total = sum(weights.values())
        mix = {k: v / total for k, v in weights.items()} if total > 0 else {}
        return ControlFrame(t=(self.first_frame + i) * self.hop, f0_hz=float(self.f0_hz[i]),
                            loudness=float(self.amp[i]), phonemes=mix,
                            breath=float(self.breath[i]), tension=float(self.tension[i]),
                            vibrato_cents=float(self.vibrato_cents[i]))

    def phoneme_at(self, sample: int) -> str | None:
        """The phoneme sounding at a show sample (``None`` in silence)."""
        i = sample // self.hop - self.first_frame
        if not 0 <= i < self.n_frames or self.phoneme_id[i] < 0:
            return None
        return self.phoneme_names[int(self.phoneme_id[i])]


def stack_controls(windows: list[dict[str, np.ndarray]], device: torch.device) -> SynthControls:
    """Batch several singers' control windows into one ``SynthControls``."""
    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([w[name] for w in windows]).astype(np.float32)).to(device)

    return SynthControls(t("f0_hz"), t("amp"), t("formant_hz"), t("formant_bw_hz"),
                         t("formant_level"), t("tension"), t("breath"), t("fric_amp"),
                         t("fric_hz"), t("fric_bw_hz"))


@functools.lru_cache(maxsize=16)
def _voice_tables(voice: VoiceProfile) -> tuple[dict[str, int], np.ndarray, np.ndarray,
                                                np.ndarray]:
    """(index by name, freqs, bandwidths, linear levels) ``[P, 5]`` for every phoneme."""
    names, freqs, levels, bws = voice.formant_arrays()
    return {n: i for i, n in enumerate(names)}, freqs, bws, levels


def _smooth(x: np.ndarray, seconds: float, hop: int) -> np.ndarray:
    """Zero-phase Hann smoothing along frames (edges held)."""
    kernel = _hann_kernel(seconds, hop)
    if len(kernel) <= 1:
        return x
    return ndimage.correlate1d(x, kernel, axis=0, mode="nearest")


@functools.lru_cache(maxsize=16)
def _hann_kernel(seconds: float, hop: int) -> np.ndarray:
    width = max(1, int(round(seconds * SAMPLE_RATE_HZ / hop)))
    kernel = np.hanning(width + 2)[1:-1]
    return kernel / kernel.sum()


@functools.lru_cache(maxsize=16)
def _second_order_design(freq_hz: float, damping: float, hop: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fs = SAMPLE_RATE_HZ / hop
    w = 2 * math.pi * freq_hz
    b, a = signal.bilinear([w * w], [1.0, 2 * damping * w, w * w], fs)
    return b, a, signal.lfilter_zi(b, a)


def _second_order(x: np.ndarray, freq_hz: float, damping: float, hop: int) -> np.ndarray:
    """A damped second-order response to ``x`` (overshoot when damping < 1)."""
    b, a, zi = _second_order_design(freq_hz, damping, hop)
    return signal.lfilter(b, a, x, zi=zi * x[0])[0]


NOISE_TABLE_FRAMES = 1 << 16


@functools.lru_cache(maxsize=32)
def _noise_table(seed: int, stream: int, cutoff_hz: float, hop: int) -> np.ndarray:
    """A seamless loop of unit-variance noise band-limited to ``cutoff_hz`` (frame rate)."""
    rng = np.random.default_rng([seed, stream])
    spectrum = np.fft.rfft(rng.standard_normal(NOISE_TABLE_FRAMES))
    freqs = np.fft.rfftfreq(NOISE_TABLE_FRAMES, hop / SAMPLE_RATE_HZ)
    spectrum *= 1.0 / np.sqrt(1.0 + (freqs / cutoff_hz) ** 4)
    out = np.fft.irfft(spectrum, NOISE_TABLE_FRAMES)
    return out / out.std()


def frame_noise(seed: int, stream: int, cutoff_hz: float, frames: np.ndarray,
                hop: int) -> np.ndarray:
    """Slow random variation at absolute show ``frames`` (same value whenever it is asked)."""
    return _noise_table(seed, stream, cutoff_hz, hop)[np.mod(frames, NOISE_TABLE_FRAMES)]


def _note_random(seed: int, note: Note) -> float:
    """A zero-mean, unit-variance number tied to a note (its onset), for per-note variation."""
    u = math.sin(seed * 12.9898 + (note.t_on % 1_000_003) * 0.0078233) * 43758.5453
    return (u - math.floor(u) - 0.5) * math.sqrt(12.0)


def default_frame_range(notes: list[Note] | tuple[Note, ...], hop: int) -> tuple[int, int]:
    """Frames from show start to a little after the last note ends."""
    end = max([n.t_off for n in notes] + [0])
    return 0, int(math.ceil((end + TAIL_S * SAMPLE_RATE_HZ) / hop)) + 1


def compile_track(notes: list[Note] | tuple[Note, ...], voice: VoiceProfile, *,
                  hop: int = DEFAULT_HOP_SAMPLES, seed: int = 0,
                  expression: Expression | None = None,
                  expression_events: list[ExpressionEvent] | tuple[ExpressionEvent, ...] = (),
                  frame_range: tuple[int, int] | None = None) -> ControlTrack:
    """The controls with which ``voice`` sings ``notes`` over show frames ``frame_range``.

    Deterministic for ``seed``: every value depends only on the notes, the expression and the
    absolute frame, so any window of frames equals the same frames of a larger window
    (up to the settling of the smoothing filters at the window's edges).
    """
    base = expression or Expression()
    notes = sorted(notes, key=lambda n: n.t_on)
    first, stop = frame_range or default_frame_range(notes, hop)
    frames = np.arange(first, stop)
    n_frames = len(frames)
    t = frames * hop
    expr = expression_curves(base, expression_events, t)
    segments = build_timeline(notes)

    index, freqs, bws, levels = _voice_tables(voice)
    seg_at = _segment_per_frame(segments, t)
    next_vowel = _next_vowel(segments)
    formant_ph = np.empty(n_frames, dtype=np.int64)
    voiced = np.zeros(n_frames)
    fric = np.zeros(n_frames)
    fric_hz = np.full(n_frames, 4000.0)
    fric_bw = np.full(n_frames, 4000.0)
    asp = np.zeros(n_frames)
    phoneme_id = np.full(n_frames, -1, dtype=np.int16)
    last_vowel = _vowel_before(segments, int(t[0]) if n_frames else 0)
    for i, k in enumerate(seg_at):
        if k < 0:
            formant_ph[i] = index[last_vowel]
            continue
        seg = segments[k]
        p = spec(seg.phoneme)
        phoneme_id[i] = index[seg.phoneme]
        if p.is_vowel:
            last_vowel = seg.phoneme
        shape = next_vowel[k] if seg.phase == "aspiration" or p.formants_hz is None \
            else seg.phoneme
        formant_ph[i] = index[shape]
        if seg.phase == "voiced":
            voiced[i] = 1.0 if p.kind in ("vowel", "glide") else p.voice_amp
            if p.noise_amp > 0:
                fric[i], fric_hz[i], fric_bw[i] = p.noise_amp, *p.noise_hz
        elif seg.phase in ("burst", "frication"):
            voiced[i] = p.voice_amp
            fric[i], fric_hz[i], fric_bw[i] = p.noise_amp, *p.noise_hz
        elif seg.phase == "closure":
            voiced[i] = p.voice_amp
        elif seg.phase == "aspiration":
            asp[i] = p.noise_amp if p.kind == "aspirate" else ASPIRATION_LEVEL

    formant_hz = np.exp(_smooth(np.log(freqs[formant_ph]), FORMANT_SMOOTH_S, hop))
    formant_hz *= expr["formant_shift"][:, None]
    formant_bw = _smooth(bws[formant_ph], FORMANT_SMOOTH_S, hop)
    formant_level = _smooth(levels[formant_ph], FORMANT_SMOOTH_S, hop)

    rate_events = [(e[0], e[2]) for e in expression_events if e[1] == "vibrato_rate"]
    midi, vib, velocity = _pitch_and_vibrato(notes, t, voice, expr, seed, hop,
                                             (base.vibrato_rate, rate_events))
    loud = voice.loudness * expr["volume"] * (0.4 + 0.75 * velocity)
    shimmer = 1.0 + 0.035 * frame_noise(seed, 1, 12.0, frames, hop)
    voiced_s = _smooth(voiced, AMP_SMOOTH_S, hop)
    amp = voiced_s * loud * shimmer
    breath = (voice.breath * expr["breathiness"] * voiced_s + _smooth(asp, AMP_SMOOTH_S, hop)) \
        * loud
    fric_amp = _smooth(fric, AMP_SMOOTH_S, hop) * loud * FRICATION_GAIN
    return ControlTrack(
        hop=hop, f0_hz=440.0 * 2.0 ** ((midi - 69.0) / 12.0), amp=amp,
        formant_hz=formant_hz, formant_bw_hz=formant_bw, formant_level=formant_level,
        tension=expr["tension"], breath=breath, fric_amp=fric_amp,
        fric_hz=fric_hz, fric_bw_hz=fric_bw, vibrato_cents=vib, phoneme_id=phoneme_id,
        phoneme_names=list(index), first_frame=first)


def _vowel_before(segments: list[Segment], sample: int) -> str:
    """The last vowel sung before ``sample`` (or the first one), to hold formants in rests."""
    found = None
    for seg in segments:
        if spec(seg.phoneme).is_vowel:
            if seg.start > sample and found is not None:
                break
            found = seg.phoneme
            if seg.start > sample:
                break
    return found or "a"


def _segment_per_frame(segments: list[Segment], t: np.ndarray) -> np.ndarray:
    """Index of the segment sounding at each frame time, -1 for silence."""
    if not segments:
        return np.full(t.shape, -1)
    starts = np.array([s.start for s in segments])
    ends = np.array([s.end for s in segments])
    k = np.searchsorted(starts, t, side="right") - 1
    inside = (k >= 0) & (t < ends[np.clip(k, 0, None)])
    return np.where(inside, k, -1)


def _next_vowel(segments: list[Segment]) -> list[str]:
    """For each segment, the vowel sung next (or last), whose formants breath takes on."""
    out = ["a"] * len(segments)
    nxt = None
    for k in range(len(segments) - 1, -1, -1):
        if spec(segments[k].phoneme).is_vowel:
            nxt = segments[k].phoneme
        out[k] = nxt or "a"
    prev = "a"
    for k, seg in enumerate(segments):
        if spec(seg.phoneme).is_vowel:
            prev = seg.phoneme
        if out[k] == "a" and nxt is None:
            out[k] = prev
    return out


def sung_pitch_midi(notes: list[Note] | tuple[Note, ...], voice: VoiceProfile, t: np.ndarray, *,
                    seed: int = 0, hop: int = DEFAULT_HOP_SAMPLES,
                    expression: Expression | None = None,
                    expression_events: list[ExpressionEvent] | tuple[ExpressionEvent, ...] = ()
                    ) -> np.ndarray:
    """The sung pitch (MIDI, fractional) at frame times ``t`` (show samples on the hop grid):
    preparation, overshoot, vibrato and drift exactly as ``compile_track`` sings them, for
    voices that take only a pitch curve from the performer (sample banks)."""
    base = expression or Expression()
    expr = expression_curves(base, expression_events, t)
    rate_events = [(e[0], e[2]) for e in expression_events if e[1] == "vibrato_rate"]
    midi, _, _ = _pitch_and_vibrato(sorted(notes, key=lambda n: n.t_on), t, voice, expr, seed,
                                    hop, (base.vibrato_rate, rate_events))
    return midi


def _pitch_and_vibrato(notes: list[Note], t: np.ndarray, voice: VoiceProfile,
                       expr: dict[str, np.ndarray], seed: int, hop: int,
                       rate: tuple[float, list[tuple[int, float]]]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sung pitch (MIDI, fractional) per frame, vibrato depth (cents) and note velocity.

    ``rate``: the base ``vibrato_rate`` expression and its changes (show sample, value).
    """
    n = len(t)
    if not notes or n == 0:
        return np.full(n, 60.0), np.zeros(n), np.full(n, 0.8)
    on = np.array([x.t_on for x in notes])
    off = np.array([x.t_off for x in notes])
    pitch = np.array([x.pitch_midi for x in notes], dtype=np.float64)
    vel = np.array([x.velocity for x in notes], dtype=np.float64)
    cur = np.clip(np.searchsorted(on, t, side="right") - 1, 0, len(notes) - 1)
    inside = t < off[cur]
    nxt = np.clip(np.where(inside, cur, cur + 1), 0, len(notes) - 1)
    nxt = np.where(t < on[0], 0, nxt)
    target = pitch[nxt]
    # Preparation before and overshoot after each transition: a damped response run
    # backwards (anticipation) and forwards (overshoot).
    prepared = _second_order(target[::-1], 9.0, 0.75, hop)[::-1]
    midi = _second_order(prepared, 6.0, 0.5, hop)

    # Vibrato: each note restarts it; it fades in after the voice's delay.
    since = (t - on[nxt]) / SAMPLE_RATE_HZ
    length = (off[nxt] - on[nxt]) / SAMPLE_RATE_HZ
    ramp = np.clip((since - voice.vibrato_delay_s) / 0.3, 0.0, 1.0)
    ramp *= (length > voice.vibrato_delay_s + 0.15)
    depth = voice.vibrato_cents * expr["vibrato_depth"] * ramp * (since >= 0)
    note_rate = np.array([voice.vibrato_rate_hz * (1.0 + 0.04 * _note_random(seed, x))
                          for x in notes])
    vibrato = depth * _vibrato_wave(note_rate[nxt], np.maximum(since, 0.0), t, *rate)
    frames = t // hop
    drift = 4.0 * frame_noise(seed, 2, 2.0, frames, hop) \
        + 2.0 * frame_noise(seed, 3, 15.0, frames, hop)
    return midi + (vibrato + drift) / 100.0, depth, vel[nxt]


def _vibrato_wave(note_rate_hz: np.ndarray, since_s: np.ndarray, t: np.ndarray,
                  base_rate: float, changes: list[tuple[int, float]]) -> np.ndarray:
    """The vibrato's unit waveform per frame time ``t`` (show samples).

    Each rate (``note_rate_hz`` times the ``vibrato_rate`` expression) is a sine started at the
    note on (``since_s``); a change of the expression crossfades to the new rate's sine over
    the expression glide, the way ``expression_curves`` glides a value. So a live change takes
    effect at its sample with no jump in pitch, and the waveform after a glide depends only on
    the rate it reached: never on where a block of frames starts, nor on how the rate got there
    (folding past changes into the base expression changes nothing).
    """
    glide = EXPRESSION_GLIDE_S * SAMPLE_RATE_HZ
    changes = sorted(changes)
    start = t.min() if len(t) else 0
    # The last change glided in before the first frame sets the rate; earlier ones are over.
    done = [k for k, (sample, _) in enumerate(changes) if sample + glide <= start]
    if done:
        base_rate = changes[done[-1]][1]
        changes = changes[done[-1] + 1:]
    phase = 2 * math.pi * note_rate_hz * since_s
    wave = np.sin(phase * base_rate)
    for sample, value in changes:
        w = np.clip((t - sample) / glide, 0.0, 1.0)
        wave = wave + (np.sin(phase * value) - wave) * w
    return wave
