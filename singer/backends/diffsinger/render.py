"""One phrase sung by a DiffSinger bank: phonemes → frames → acoustic → vocoder → 48 kHz.

A phrase is a run of touching notes. It is laid out from ``origin`` (a show sample) with
``head_frames`` of SP lead-in before its first phoneme and ``tail_frames`` of SP after, as
OpenUtau does; durations are rounded on the frame grid from absolute boundaries (no drift).
The f0 is the bank's pitch model when it has one, else the engine's own curve (preparation,
overshoot, vibrato). The vocoder's output is resampled by a polyphase filter whose first
output sample sits exactly on ``origin``, so phrases line up on the show clock to the sample.

Expression (the singer's, ``PhraseExpression``): vibrato depth and rate shape the engine's f0
curve (banks without a pitch model); ``breathiness`` and ``tension`` offset the variance
curves the acoustic model takes when it declares them (breathiness: +20·log10(factor) dB,
tension: +10·(value − 0.5) on the model's logit scale); ``formant_shift`` is the ``gender``
input (key shift, 12·log2(factor) semitones within the bank's range) when the model takes
it; ``volume`` scales the phrase's samples. ``expression_fields`` says which a bank honours.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from singer.backends.diffsinger.bank import DiffSingerBank
from singer.backends.diffsinger.config import DsConfig
from singer.backends.diffsinger.phonemize import BankPhone, time_phones
from singer.backends.diffsinger.predict import predict_pitch, predict_variances
from singer.contracts import DEFAULT_HOP_SAMPLES, SAMPLE_RATE_HZ, Note
from singer.performer import Expression, ExpressionEvent, compile_track, expression_curves
from singer.voices import VoiceProfile, get_voice

HEAD_FRAMES = 8
TAIL_FRAMES = 8
EDGE_FADE_S = 0.005
DEFAULT_STEPS = 20
"""OpenUtau's default diffusion steps."""


@dataclass(frozen=True, slots=True)
class RenderSettings:
    """How a bank sings: language (zh/en, None detects), speaker, diffusion steps and depth.

    ``pitch_style`` gives the engine's own f0 curve its vibrato when the bank has no pitch
    model; ``head_frames``/``tail_frames`` are the SP lead-in/out around each phrase.
    """

    language: str | None = None
    speaker: str | None = None
    steps: int = DEFAULT_STEPS
    depth: float = 1.0
    pitch_style: str = "soprano"
    head_frames: int = HEAD_FRAMES
    tail_frames: int = TAIL_FRAMES
    seed: int = 0


DEFAULT_SETTINGS = RenderSettings()
PhraseExpression = tuple[Expression, tuple[ExpressionEvent, ...]]
"""A singer's base expression and the timed changes that reach a phrase."""
NEUTRAL_EXPRESSION: PhraseExpression = (Expression(), ())


def expression_fields(cfg: DsConfig, has_pitch_model: bool) -> frozenset[str]:
    """The expression fields a bank with this dsconfig honours (see the module docstring)."""
    out = {"volume"}
    if not has_pitch_model:
        out |= {"vibrato_depth", "vibrato_rate"}
    if cfg.use_breathiness_embed:
        out.add("breathiness")
    if cfg.use_tension_embed:
        out.add("tension")
    if cfg.use_key_shift_embed:
        out.add("formant_shift")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class RenderedPhrase:
    """Mono float32 audio at 48 kHz; ``samples[0]`` sits at show sample ``start``.

    ``voice_start``/``voice_end`` bound the sung phonemes (outside is SP lead-in/out);
    ``key`` is the content hash the phrase was cached under.
    """

    start: int
    samples: np.ndarray
    voice_start: int
    voice_end: int
    key: str

    @property
    def end(self) -> int:
        """Show sample just after the last sample."""
        return self.start + len(self.samples)


def phrase_key(bank: DiffSingerBank, notes: tuple[Note, ...], settings: RenderSettings,
               extra: str = "") -> str:
    """A content hash of everything a phrase's audio depends on."""
    h = hashlib.sha256()
    h.update(str(bank.folder.resolve()).encode())
    for path in (bank.acoustic.path, bank.vocoder.path):
        st = path.stat()
        h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(repr(settings).encode())
    h.update(repr([(n.t_on, n.t_off, n.pitch_midi, n.lyric, n.velocity) for n in notes]).encode())
    h.update(extra.encode())
    return h.hexdigest()[:32]


def acceleration(bank: DiffSingerBank, settings: RenderSettings) -> dict[str, int | float]:
    """The sampling inputs for the bank's variant (continuous steps/depth, legacy speedup)."""
    cfg = bank.config
    depth = min(settings.depth, cfg.max_depth) if cfg.use_variable_depth else settings.depth
    if cfg.use_continuous_acceleration:
        out: dict[str, int | float] = {"steps": max(1, settings.steps)}
        if cfg.use_variable_depth:
            out["depth"] = float(depth)
        return out
    speedup = max(1, 1000 // max(1, settings.steps))
    while 1000 % speedup:
        speedup -= 1
    out = {"speedup": speedup}
    if cfg.use_variable_depth:
        out["depth"] = int(round(depth * 1000)) // speedup * speedup
    return out


def engine_f0_midi(notes: list[Note], times: np.ndarray, style: VoiceProfile,
                   seed: int = 0, expression: PhraseExpression = NEUTRAL_EXPRESSION
                   ) -> np.ndarray:
    """The engine's sung pitch (MIDI) at show-sample ``times``: the built-in voice's curve
    (its vibrato following the expression's depth and rate)."""
    hop = DEFAULT_HOP_SAMPLES
    first = int(math.floor(times.min() / hop)) - 1
    stop = int(math.ceil(times.max() / hop)) + 2
    track = compile_track(notes, style, hop=hop, seed=seed, frame_range=(first, stop),
                          expression=expression[0], expression_events=expression[1])
    grid = (np.arange(first, stop)) * hop
    midi = 69.0 + 12.0 * np.log2(track.f0_hz / 440.0)
    return np.interp(times, grid, midi)


def layout(bank: DiffSingerBank, phones: list[BankPhone], origin: int, settings: RenderSettings
           ) -> tuple[list[str], np.ndarray]:
    """(symbols with SP ends, frame durations) for phones laid out from show sample ``origin``."""
    frame = bank.frame_s * SAMPLE_RATE_HZ
    bounds = [phones[0].start] + [p.end for p in phones]
    idx = [settings.head_frames + round((b - phones[0].start) / frame) for b in bounds]
    for k in range(1, len(idx)):
        idx[k] = max(idx[k], idx[k - 1] + 1)  # every phoneme keeps at least one frame
    durations = np.array([settings.head_frames] + list(np.diff(idx))
                         + [settings.tail_frames], np.int64)
    return ["SP"] + [p.symbol for p in phones] + ["SP"], durations


def resample_to_show(wave: np.ndarray, rate_hz: int) -> np.ndarray:
    """Polyphase resampling to 48 kHz; output sample 0 is input sample 0 (no delay)."""
    if rate_hz == SAMPLE_RATE_HZ:
        return wave.astype(np.float32)
    g = math.gcd(SAMPLE_RATE_HZ, rate_hz)
    return signal.resample_poly(wave, SAMPLE_RATE_HZ // g, rate_hz // g).astype(np.float32)


def _edge_fades(x: np.ndarray) -> np.ndarray:
    n = min(len(x) // 2, int(EDGE_FADE_S * SAMPLE_RATE_HZ))
    if n > 0:
        ramp = np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def render_phrase(bank: DiffSingerBank, notes: list[Note] | tuple[Note, ...],
                  settings: RenderSettings = DEFAULT_SETTINGS,
                  phones: list[BankPhone] | None = None,
                  expression: PhraseExpression = NEUTRAL_EXPRESSION) -> RenderedPhrase:
    """Sing one phrase of touching notes with ``expression``; the result is placed on show
    samples."""
    notes = tuple(sorted(notes, key=lambda n: n.t_on))
    if not notes:
        raise ValueError("a phrase needs at least one note")
    phones = phones if phones is not None else time_phones(bank, notes, settings.language)
    frame = bank.frame_s * SAMPLE_RATE_HZ
    origin = phones[0].start - int(round(settings.head_frames * frame))
    symbols, durations = layout(bank, phones, origin, settings)
    n_frames = int(durations.sum())
    times = origin + np.arange(n_frames) * frame
    midi = engine_f0_midi(list(notes), times, get_voice(settings.pitch_style), settings.seed,
                          expression)
    if "pitch" in bank.predictors:
        midi = predict_pitch(bank, symbols, durations, list(notes), origin, midi,
                             settings.steps, settings.speaker)
    f0 = (440.0 * 2.0 ** ((midi - 69.0) / 12.0)).astype(np.float32)
    curves = expression_curves(*expression, times) if expression != NEUTRAL_EXPRESSION \
        else None
    mel = run_acoustic(bank, symbols, durations, f0, midi, settings, curves)
    wave = run_vocoder(bank, mel, f0)
    out = resample_to_show(wave, bank.sample_rate_hz)
    if curves is not None:
        at = origin + np.arange(len(out), dtype=np.float64)
        out = (out * np.interp(at, times, curves["volume"])).astype(np.float32)
    out = _edge_fades(out)
    extra = "" if expression == NEUTRAL_EXPRESSION else repr(expression)
    return RenderedPhrase(start=origin, samples=out, voice_start=phones[0].start,
                          voice_end=phones[-1].end,
                          key=phrase_key(bank, notes, settings, extra))


def run_acoustic(bank: DiffSingerBank, symbols: list[str], durations: np.ndarray,
                 f0: np.ndarray, midi: np.ndarray, settings: RenderSettings,
                 curves: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The acoustic model's mel ``[1, T, bins]`` (in the model's own log base); ``curves``:
    the expression per frame (``None``: neutral)."""
    cfg = bank.config
    n = int(durations.sum())
    feeds: dict[str, np.ndarray | int | float] = {
        "tokens": np.array([[bank.phonemes[s] for s in symbols]], np.int64),
        "durations": durations[None, :], "f0": f0[None, :], **acceleration(bank, settings)}
    emb = bank.speaker_embed(settings.speaker)
    if emb is not None:
        feeds["spk_embed"] = np.broadcast_to(emb, (1, n, emb.size)).astype(np.float32)
    if cfg.use_lang_id:
        feeds["languages"] = np.array([[bank.languages.get(s.split("/")[0], 0) if "/" in s
                                        else 0 for s in symbols]], np.int64)
    if cfg.use_key_shift_embed:
        gender = np.zeros(n, np.float32)
        if curves is not None:
            low, high = cfg.key_shift_range
            gender = np.clip(12.0 * np.log2(curves["formant_shift"]), low, high)
        feeds["gender"] = gender.astype(np.float32)[None, :]
    if cfg.use_speed_embed:
        feeds["velocity"] = np.ones((1, n), np.float32)
    if cfg.variance_embeds:
        predicted = predict_variances(bank, symbols, durations, midi, settings.steps,
                                      settings.speaker)
        for name in cfg.variance_embeds:
            feeds[name] = _expressed(name, predicted.get(name, np.zeros(n, np.float32)),
                                     curves)[None, :]
    (mel,) = bank.acoustic.run(feeds, ("mel",))
    return mel


def _expressed(name: str, curve: np.ndarray, curves: dict[str, np.ndarray] | None
               ) -> np.ndarray:
    """A predicted variance curve with the singer's expression applied (breathiness in dB,
    tension on the model's logit scale)."""
    if curves is None:
        return curve
    if name == "breathiness":
        return (curve + 20.0 * np.log10(np.maximum(curves["breathiness"], 0.01))
                ).astype(np.float32)
    if name == "tension":
        return (curve + 10.0 * (curves["tension"] - 0.5)).astype(np.float32)
    return curve


def run_vocoder(bank: DiffSingerBank, mel: np.ndarray, f0: np.ndarray) -> np.ndarray:
    """The vocoder's waveform at the bank's rate for a mel in the acoustic model's base."""
    mel = (mel * bank.mel_factor).astype(np.float32) if bank.mel_factor != 1.0 else mel
    (wave,) = bank.vocoder.run({"mel": mel, "f0": f0[None, :]}, ("waveform",))
    if wave.ndim != 2 or wave.shape[0] != 1:
        raise ValueError(f"{bank.vocoder.path}: waveform must be [1, samples], got {wave.shape}")
    return np.asarray(wave[0], np.float32)
