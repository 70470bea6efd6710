"""The bank's own predictors: phoneme durations (dsdur), pitch (dspitch), variances (dsvariance).

Each runs its linguistic encoder and then its model with exactly the inputs its dsconfig
implies (the loader has verified the names). Times here are acoustic frames of the bank.
"""

from __future__ import annotations

import numpy as np

from singer.backends.diffsinger.bank import DiffSingerBank, Predictor
from singer.backends.diffsinger.errors import BankError
from singer.contracts import SAMPLE_RATE_HZ, Note


def _tokens(pred: Predictor, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, language ids) ``[1, N]`` in the predictor's own phoneme table."""
    ids, langs = [], []
    for s in symbols:
        if s not in pred.phonemes:
            raise BankError(pred.config.folder / str(pred.config.phonemes),
                            f"{pred.kind} predictor's phoneme list lacks {s!r}", s)
        ids.append(pred.phonemes[s])
        langs.append(pred.languages.get(s.split("/")[0], 0) if "/" in s else 0)
    return np.array([ids], np.int64), np.array([langs], np.int64)


def acceleration_feeds(pred: Predictor, steps: int) -> dict[str, np.ndarray | int]:
    """``steps`` (continuous acceleration) or the largest divisor-of-1000 ``speedup``."""
    if pred.config.use_continuous_acceleration:
        return {"steps": steps}
    speedup = max(1, 1000 // max(1, steps))
    while 1000 % speedup:
        speedup -= 1
    return {"speedup": speedup}


def _speaker(pred: Predictor, speaker: str | None, frames: int) -> dict[str, np.ndarray]:
    if not pred.speakers:
        return {}
    emb = pred.speakers.get(speaker or "", next(iter(pred.speakers.values())))
    return {"spk_embed": np.broadcast_to(emb, (1, frames, emb.size)).astype(np.float32)}


def model_onset_leads(bank: DiffSingerBank, sylls: list[tuple[int, int, tuple[str, ...]]],
                      n_onsets: list[int], notes: list[Note], language: str,
                      speaker: str | None = None) -> dict[int, int]:
    """Per syllable's first note: the onset length (show samples) the duration model predicts.

    DiffSinger's words start at a vowel (a note on): each syllable's onset consonants close the
    word before. Predicted durations are scaled so each word fills its notes exactly.
    """
    pred = bank.predictors["dur"]
    frame = bank.frame_s * SAMPLE_RATE_HZ
    symbols, word_div, word_dur = ["SP"], [], []
    ph_midi = [round(notes[sylls[0][0]].pitch_midi)]
    head = max(1, round(0.1 * SAMPLE_RATE_HZ / frame))
    count = 1
    for k, (first, _last, sym) in enumerate(sylls):
        onset, rest = sym[:n_onsets[k]], sym[n_onsets[k]:]
        symbols += onset
        count += len(onset)
        word_div.append(count)
        word_dur.append(head if k == 0 else
                        max(1, round((notes[first].t_on - notes[sylls[k - 1][0]].t_on) / frame)))
        symbols += rest
        ph_midi += [round(notes[first].pitch_midi)] * len(sym)
        count = len(rest)
    symbols.append("SP")
    count += 1
    word_div.append(count)
    end = notes[sylls[-1][1]].t_off
    word_dur.append(max(1, round((end - notes[sylls[-1][0]].t_on) / frame)))
    ph_midi.append(ph_midi[-1])
    tokens, langs = _tokens(pred, symbols)
    feeds: dict[str, np.ndarray | int] = {
        "tokens": tokens, "word_div": np.array([word_div], np.int64),
        "word_dur": np.array([word_dur], np.int64)}
    if pred.config.use_lang_id:
        feeds["languages"] = langs
    enc, mask = pred.linguistic.run(feeds, ("encoder_out", "x_masks"))
    model_feeds: dict[str, np.ndarray | int] = {
        "encoder_out": enc, "x_masks": mask, "ph_midi": np.array([ph_midi], np.int64),
        **_speaker(pred, speaker, len(symbols))}
    (dur,) = pred.model.run(model_feeds, ("ph_dur_pred",))
    dur = np.maximum(np.asarray(dur, np.float64).reshape(-1), 1e-3)
    if dur.size != len(symbols):
        raise BankError(pred.model.path, f"ph_dur_pred has {dur.size} values for "
                        f"{len(symbols)} phonemes", "ph_dur_pred")
    leads: dict[int, int] = {}
    start = 0
    for k, size in enumerate(word_div):
        scaled = dur[start:start + size] * (word_dur[k] / dur[start:start + size].sum())
        if k + 1 < len(word_div) and n_onsets[k]:
            leads[sylls[k][0]] = int(round(scaled[-n_onsets[k]:].sum() * frame))
        start += size
    return leads


def predict_pitch(bank: DiffSingerBank, symbols: list[str], durations: np.ndarray,
                  notes: list[Note], origin: int, base_midi: np.ndarray, steps: int,
                  speaker: str | None = None) -> np.ndarray:
    """The pitch model's curve (MIDI per frame) for a phrase laid out in ``durations``."""
    pred = bank.predictors["pitch"]
    frame = bank.frame_s * SAMPLE_RATE_HZ
    n_frames = int(durations.sum())
    tokens, langs = _tokens(pred, symbols)
    ling: dict[str, np.ndarray | int] = {"tokens": tokens, "ph_dur": durations[None, :]}
    if pred.config.use_lang_id:
        ling["languages"] = langs
    enc, _ = pred.linguistic.run(ling, ("encoder_out", "x_masks"))
    edges = [origin] + [n.t_on for n in notes] + [notes[-1].t_off]
    frames_at = np.round((np.array(edges) - origin) / frame).astype(np.int64)
    frames_at[-1] = n_frames
    note_dur = np.maximum(np.diff(frames_at), 0)
    note_midi = np.array([notes[0].pitch_midi] + [n.pitch_midi for n in notes], np.float32)
    feeds: dict[str, np.ndarray | int] = {
        "encoder_out": enc, "ph_dur": durations[None, :],
        "note_midi": note_midi[None, :], "note_dur": note_dur[None, :],
        "pitch": base_midi[None, :].astype(np.float32),
        "retake": np.ones((1, n_frames), np.bool_),
        **acceleration_feeds(pred, steps), **_speaker(pred, speaker, n_frames)}
    if pred.config.use_note_rest:
        feeds["note_rest"] = np.array([[True] + [False] * len(notes)])
    if pred.config.use_expr:
        feeds["expr"] = np.ones((1, n_frames), np.float32)
    (pitch,) = pred.model.run(feeds, ("pitch_pred",))
    return np.asarray(pitch, np.float64).reshape(-1)[:n_frames]


def predict_variances(bank: DiffSingerBank, symbols: list[str], durations: np.ndarray,
                      midi: np.ndarray, steps: int, speaker: str | None = None
                      ) -> dict[str, np.ndarray]:
    """Energy, breathiness, voicing, tension curves (per frame) the variance model predicts."""
    pred = bank.predictors["variance"]
    n_frames = int(durations.sum())
    tokens, langs = _tokens(pred, symbols)
    ling: dict[str, np.ndarray | int] = {"tokens": tokens, "ph_dur": durations[None, :]}
    if pred.config.use_lang_id:
        ling["languages"] = langs
    enc, _ = pred.linguistic.run(ling, ("encoder_out", "x_masks"))
    names = pred.variance_names
    feeds: dict[str, np.ndarray | int] = {
        "encoder_out": enc, "ph_dur": durations[None, :],
        "pitch": midi[None, :].astype(np.float32),
        "retake": np.ones((1, n_frames, len(names)), np.bool_),
        **{n: np.zeros((1, n_frames), np.float32) for n in names},
        **acceleration_feeds(pred, steps), **_speaker(pred, speaker, n_frames)}
    outs = pred.model.run(feeds, tuple(f"{n}_pred" for n in names))
    return {n: np.asarray(o, np.float32).reshape(-1)[:n_frames] for n, o in zip(names, outs,
                                                                                  strict=True)}
