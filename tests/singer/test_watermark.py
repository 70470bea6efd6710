"""The audio watermark: streaming embedding, detection after broadcast treatments, no false
alarms, and ``render``/``watermark detect`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.provenance import attacks, audible, spread
from singer.provenance import watermark as wm
from singer.provenance.aigc import read_wav_label
from singer.provenance.masking import imperceptibility
from stage.cli import main
from tests.singer.helpers import line, sing

SR = wm.SAMPLE_RATE_HZ
CLIP = 5 * SR
ID = 0x1A2B3C4D


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    """~11 s of the soprano singing a phrase, unmarked."""
    notes = [(0.2 + 0.7 * i, 0.65, 67 + [0, 2, 4, 5, 7, 5, 4, 2][i % 8], ("l", "a"))
             for i in range(15)]
    return sing(line(notes))


@pytest.fixture(scope="module")
def marked(song: np.ndarray) -> np.ndarray:
    return wm.embed(song, ID)


@pytest.mark.parametrize("chunk", [1, 7, 160, 240, 480, 48_000])
def test_chunked_equals_one_shot(song: np.ndarray, chunk: int) -> None:
    x = song[:SR // 2 if chunk < 100 else 3 * SR]
    ref = wm.Embedder(ID).process(x)
    emb = wm.Embedder(ID)
    out = [emb.process(x[i:i + chunk]) for i in range(0, len(x), chunk)]
    assert [len(o) for o in out] == [len(x[i:i + chunk]) for i in range(0, len(x), chunk)]
    assert len(emb.flush()) == 0  # nothing held back
    np.testing.assert_allclose(np.concatenate(out), ref, rtol=0, atol=1e-6)


def test_embedder_is_causal_with_no_latency(song: np.ndarray) -> None:
    """Output sample t depends on input up to t only: changing the future changes nothing
    before it, and the marked signal is the input, sample for sample, plus a small mark."""
    x = song[:2 * SR].copy()
    a = wm.Embedder(ID).process(x)
    x[SR:] = 0.0
    b = wm.Embedder(ID).process(x)
    assert wm.LATENCY_SAMPLES == 0
    np.testing.assert_array_equal(a[:SR], b[:SR])
    assert not np.array_equal(a[SR:SR + 300], b[SR:SR + 300])
    mark = a - song[:2 * SR]  # aligned sample for sample: what is left is the small mark
    assert 10 * np.log10(np.sum(mark ** 2) / np.sum(song[:2 * SR] ** 2)) < -16.0


def test_seek_after_a_gap_keeps_the_show_position(song: np.ndarray) -> None:
    """A stream that skips samples and seeks is marked as one that had them (slot and noise
    keyed by show sample), once the layers' memory (``MEMORY_SAMPLES``) refills."""
    x = song[:3 * SR]
    ref = wm.Embedder(ID).process(x)
    emb = wm.Embedder(ID)
    emb.process(x[:SR])
    emb.seek(SR + 4800)
    got = emb.process(x[SR + 4800:])
    np.testing.assert_allclose(got[wm.MEMORY_SAMPLES:], ref[SR + 4800 + wm.MEMORY_SAMPLES:],
                               atol=1e-6)
    with pytest.raises(ValueError, match="position"):
        emb.seek(-1)


def test_mark_is_aligned_quiet_and_silence_stays_silent(song: np.ndarray,
                                                        marked: np.ndarray) -> None:
    assert len(marked) == len(song)
    figures = imperceptibility(song, marked)
    assert figures["wsr_db"] < -16.0
    assert figures["loudest_band_margin_noise_masker_db"] > 10.0
    assert np.corrcoef(song, marked)[0, 1] > 0.99  # aligned sample for sample
    assert not np.any(wm.embed(np.zeros(SR), ID))


def _attacked(clip: np.ndarray, bed: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    return {"none": (clip, SR), "resample_44k1": (attacks.resample(clip, SR, 44_100), 44_100),
            "gain_-6db": (attacks.gain(clip, -6.0), SR),
            "opus_32k": (attacks.codec_round_trip(clip, "libopus", 32_000), SR),
            "opus_96k": (attacks.codec_round_trip(clip, "libopus", 96_000), SR),
            "mp3_128k": (attacks.codec_round_trip(clip, "libmp3lame", 128_000), SR),
            "singer_mixed_6db_under": (attacks.mix_under(bed, clip, -6.0), SR)}


@pytest.mark.parametrize("start_s", [0.0, 3.37, 5.9])
def test_detected_after_each_attack_at_any_offset(song: np.ndarray, marked: np.ndarray,
                                                  start_s: float) -> None:
    start = int(start_s * SR)
    clip = marked[start:start + CLIP]
    bed = np.roll(song, 2 * SR + 777)[start:start + CLIP]  # another phrase, unmarked
    for name, (audio, rate) in _attacked(clip, bed).items():
        found = wm.detect(audio, rate)
        assert found.detected, f"{name}: score {found.score:.1f}"
        if name in ("none", "resample_44k1", "gain_-6db", "opus_96k", "mp3_128k"):
            assert found.payload == wm.Payload(ID, 0), name  # zero payload bit errors
        assert found.segments and found.segments[0].start_s < 1.0


@pytest.fixture(scope="module")
def other_song() -> np.ndarray:
    """~11 s of the tenor singing another phrase (unmarked): the louder song of a mix."""
    notes = [(0.1 + 0.5 * i, 0.45, 50 + [0, 3, 5, 7, 10, 7, 5, 3][i % 8], ("n", "o"))
             for i in range(22)]
    return sing(line(notes), voice="tenor")


@pytest.mark.parametrize("start_s", [0.0, 3.37, 5.9])
def test_found_when_mixed_6db_under_another_song(song: np.ndarray, marked: np.ndarray,
                                                 other_song: np.ndarray,
                                                 start_s: float) -> None:
    """The marked voice 6 dB *under* another render, or under music-like notes: the additive
    layer finds it with a margin (the patchwork alone does not), and the same mixes of the
    unmarked voice are not found."""
    from stage.bench.watermark import _notes_music

    start = int(start_s * SR)
    beds = {"another song": other_song[start:start + CLIP],
            "music-like notes": _notes_music(np.random.default_rng(11), CLIP)}
    for name, bed in beds.items():
        found = wm.detect(attacks.mix_under(marked[start:start + CLIP], bed, -6.0), SR)
        assert found.detected, f"{name}: scores {found.score:.1f} / {found.spread_score:.1f}"
        assert found.spread_score > 1.5 * spread.THRESHOLD, name
        assert found.segments and found.segments[0].spread_score == found.spread_score
        plain = wm.detect(attacks.mix_under(song[start:start + CLIP], bed, -6.0), SR)
        assert not plain.detected, f"unmarked, {name}: {plain.score:.1f} / {plain.spread_score:.1f}"
        assert plain.spread_score < spread.THRESHOLD - 1.0 and plain.score < 5.0, name
    song_mix = wm.detect(attacks.mix_under(marked[start:start + CLIP], beds["another song"],
                                           -6.0), SR)
    assert song_mix.score < wm.THRESHOLD  # what the patchwork alone measured: not found


def test_spread_layer_is_shaped_under_the_voice_and_silent_in_silence(song: np.ndarray) -> None:
    """The additive layer alone: 30 dB under the voice overall, nothing in silence."""
    layer = spread.SpreadLayer()
    noise = layer.mark(song.astype(np.float64))
    wsr = 10 * np.log10(np.sum(noise ** 2) / np.sum(song.astype(np.float64) ** 2))
    assert -31.5 < wsr < -28.5
    assert not np.any(spread.SpreadLayer().mark(np.zeros(SR)))


def test_counter_tells_the_time(song: np.ndarray) -> None:
    long = np.tile(song, 3)[:int(wm.EPOCH_S * SR) + 7 * SR]
    clip = wm.embed(long, ID, counter_start=41)[-6 * SR:]
    found = wm.detect(clip, SR)
    assert found.payload == wm.Payload(ID, 42)
    assert found.payload.time_s == pytest.approx(42 * wm.EPOCH_S)


def test_no_detection_on_unmarked_audio(song: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    n = CLIP
    t = np.arange(n) / SR
    clips = [song[i * SR:i * SR + n] for i in range(0, len(song) // SR - 5, 2)]
    clips += [0.1 * rng.standard_normal(n) for _ in range(4)]
    clips += [0.3 * np.sin(2 * np.pi * f * t) for f in (220.0, 1000.0)]
    clips += [np.zeros(n), wm.embed(song, ID)[:SR // 2]]  # silence, and too short to search
    for clip in clips:
        found = wm.detect(clip, SR)
        assert not found.detected and found.payload is None and found.score < 5.0


def test_render_marks_and_labels_and_detect_cli(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    score = tmp_path / "s.musicxml"
    score.write_text(_SCORE)
    out = tmp_path / "out.wav"
    assert main(["render", str(score), "-o", str(out), "--producer", "Studio 7"]) == 0
    label = read_wav_label(out)
    assert label is not None and label.Label == "1" and label.ContentProducer == "Studio 7"
    # the audible label first (short-long-short-short), then the song, lead_samples() on
    audio, _ = sf.read(out, dtype="float32")
    lead = audible.lead_samples()
    assert audible.beep_lengths_units(audio[:lead]) == [1, 3, 1, 1]
    # silence after it, once the causal mark's tail (its MEMORY_SAMPLES, 21 ms) has passed
    cue_end = len(audible.rhythm_cue())
    assert np.abs(audio[cue_end:cue_end + wm.MEMORY_SAMPLES]).max() < 0.02
    assert np.abs(audio[cue_end + wm.MEMORY_SAMPLES:lead]).max() < 1e-4
    capsys.readouterr()
    assert main(["watermark", "detect", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"detected", "payload", "confidence", "segments"}
    assert result["detected"] and result["payload"]["id"] == label.ProduceID[:8]
    plain = tmp_path / "plain.wav"
    assert main(["render", str(score), "-o", str(plain), "--no-watermark",
                 "--no-audible-label"]) == 0
    assert read_wav_label(plain) is not None
    bare, _ = sf.read(plain, dtype="float32")
    assert len(bare) == len(audio) - lead and audible.beep_lengths_units(bare[:lead]) != [
        1, 3, 1, 1]
    assert read_wav_label(plain) != label  # a fresh ProduceID per render
    capsys.readouterr()
    assert main(["watermark", "detect", str(plain)]) == 1
    assert "no watermark" in capsys.readouterr().out
    assert main(["watermark", "detect", str(tmp_path / "missing.wav")]) == 2


_NOTES = "".join(
    f"<note><pitch><step>{s}</step><octave>4</octave></pitch><duration>2</duration>"
    f"<type>half</type><lyric><text>la</text></lyric></note>" for s in "CDEFGAGFEDCDEFGA")
_SCORE = ('<?xml version="1.0"?><score-partwise version="3.1"><part-list><score-part id="P1">'
          '<part-name>V</part-name></score-part></part-list><part id="P1">'
          '<measure number="1"><attributes><divisions>1</divisions><time><beats>4</beats>'
          '<beat-type>4</beat-type></time></attributes><sound tempo="120"/>'
          + _NOTES + "</measure></part></score-partwise>")
