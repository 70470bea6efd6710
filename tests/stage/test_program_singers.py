"""Per-singer vocal chains live: a real in-process ``serve --record`` (synthesis in its own
process, each singer's voice through the shared-memory ring) of a two-part song, the alto
through the ballad chain and the lead dry. Measured in the files: each singer's dry voice
apart (``voice-<singer>.wav``), the alto's reverb tail in the program and not the lead's,
the program equal to an offline render of the same song with the same chains (tails
included), per-singer meters in the status, the ``chain.set`` cue, and the voice-only
output (in-ear monitors): marked, and without the backing's clicks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ, AudioChunk
from singer.mix.chain import chain_preset
from singer.mix.program import ProgramMix, render_program
from singer.provenance.aigc import read_wav_label
from singer.provenance.watermark import Embedder
from singer.render import build_ensemble, render_ensemble_parts
from singer.scores.load import load_score
from stage.serve import ServeOptions, mix_out, serve
from tests.measure import xrun_budget
from tests.stage.test_serve_live import UdpOsc

SR = SAMPLE_RATE_HZ
BEAT = SR // 2  # 120 bpm
MS = SR // 1000
CHUNK = 240  # the show's 5 ms chunks
SYNTHESIS = "process"  # each singer through the shared-memory ring
LEAD_BEATS = (0, 1, 2)
ALTO_BEATS = (5, 6, 7)
CLICK_BEATS = (0, 1, 2, 3, 4, 5, 6, 7)


def make_song(folder: Path) -> Path:
    """Two parts at 120 bpm (MusicXML written by music21): the lead sings A4 on beats 0-2,
    the alto E4 on beats 5-7 (each note 1/3 beat); the sidecar's click stem has an impulse
    on every beat."""
    import music21

    m21 = music21.stream.Score()
    for name, pitch, beats in (("Lead", 69, LEAD_BEATS), ("Alto", 64, ALTO_BEATS)):
        part = music21.stream.Part()
        part.partName = name
        part.insert(0, music21.tempo.MetronomeMark(number=120))
        part.insert(0, music21.meter.TimeSignature("4/4"))
        for beat in beats:
            note = music21.note.Note(pitch, quarterLength=0.5)
            note.lyric = "la"
            part.insert(float(beat), note)
        m21.insert(0, part)
    song = folder / "duo.musicxml"
    m21.write("musicxml", fp=str(song))
    click = np.zeros(10 * SR, np.float32)
    click[np.array(CLICK_BEATS) * BEAT] = 0.5
    sf.write(folder / "click.wav", click, SR, subtype="FLOAT")
    (folder / "duo.backing.yaml").write_text("stems:\n  - file: click.wav\n    name: click\n")
    return song


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


async def _show(tmp_path: Path, song: Path) -> dict[str, object]:
    """Play the song once from show sample 0 under serve (it ends with the song's tail);
    returns what was asked and answered on the way."""
    opts = ServeOptions(osc_port=0, http_port=None, headless=True, record=tmp_path / "rec",
                        audible_label="off", song=str(song), play_song=True, chain="dry",
                        singer_chains=("alto=ballad",), synthesis=SYNTHESIS)
    ports: dict[str, object] = {}
    handles: dict[str, object] = {}
    ready = asyncio.Event()

    def on_ready(bound: dict[str, object]) -> None:
        ports.update(bound)
        ready.set()

    task = asyncio.ensure_future(serve(opts, on_ready, handles))
    got: dict[str, object] = {}
    try:
        await asyncio.wait_for(ready.wait(), 60)
        program = handles["program"]
        in_ears: list[AudioChunk] = []  # a voice-only output, as the sound card would get
        mix_out("voice", handles["outputs"], program, handles["director"],  # type: ignore[arg-type]
                False).add_sink(in_ears.append)
        ctl = UdpOsc(int(ports["osc"]))  # type: ignore[call-overload]
        await asyncio.sleep(1.0)
        got["status"] = program.status()  # type: ignore[attr-defined]  # /status "program"
        got["bad_preset"] = await ctl.ask("/livesinger/singer/alto/chain/preset", "loud")
        got["bad_param"] = await ctl.ask("/livesinger/singer/lead/chain/set", "reverb.mix",
                                         0.5)
        got["param"] = await ctl.ask("/livesinger/singer/alto/chain/set", "reverb.mix", 0.25)
        got["summary"] = await asyncio.wait_for(task, 60)  # the song and its tail
        got["in_ears"] = in_ears
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return got


async def test_each_singer_has_a_chain_a_file_and_a_meter_and_live_equals_render(
        tmp_path: Path) -> None:
    song = make_song(tmp_path)
    got = await _show(tmp_path, song)
    p_at = 0  # the song plays from show sample 0, as a render puts it at WAV sample 0
    rec = tmp_path / "rec"
    program, _ = sf.read(rec / "audio.wav", dtype="float32")
    voice, _ = sf.read(rec / "voice.wav", dtype="float32")
    lead, _ = sf.read(rec / "voice-lead.wav", dtype="float32")
    alto, _ = sf.read(rec / "voice-alto.wav", dtype="float32")
    for path in ("voice-lead.wav", "voice-alto.wav"):
        assert read_wav_label(rec / path) is not None, path  # AIGC labelled
    n = min(len(program), len(voice), len(lead), len(alto))
    # each singer's file holds that singer alone; together they are the dry voice
    np.testing.assert_allclose(lead[:n] + alto[:n], voice[:n], atol=1e-6)
    lead_span = slice(p_at, p_at + 3 * BEAT)
    alto_span = slice(p_at + 5 * BEAT, p_at + 8 * BEAT)
    assert rms_db(lead[lead_span]) > -40 and rms_db(lead[alto_span]) < -90
    assert rms_db(alto[alto_span]) > -40 and rms_db(alto[lead_span]) < -90

    # offline: the same song, the same chains (lead dry, alto ballad), tails included
    score = load_score(song)
    parts = render_ensemble_parts(build_ensemble(score, ["soprano"], seed=0,
                                                 singers=["lead", "alto"]))
    mix = ProgramMix({"lead": chain_preset("dry"), "alto": chain_preset("ballad")})
    offline = render_program({"lead": parts[0], "alto": parts[1]}, mix, tail_samples=3 * SR)
    top = 72  # the show's program latency: the ballad chain's (fixed at start)
    assert mix.latency_samples == top
    # the live program: the offline one L later, plus the backing, marked with the show's ID
    n = len(program) // CHUNK * CHUNK
    assert n >= 7 * BEAT + 3 * SR  # the show played 3 s past the last note: the tails
    want = np.zeros(n, np.float32)
    m = min(n - top, len(offline.program))
    want[top:top + m] = offline.program[:m]
    want[np.array(CLICK_BEATS) * BEAT + top] += 0.5  # the click stem, as the sidecar puts it
    label = read_wav_label(rec / "audio.wav")
    assert label is not None
    embedder = Embedder(label.watermark_id)
    want = np.concatenate([embedder.process(want[t:t + CHUNK]) for t in range(0, n, CHUNK)])
    # sample for sample, tails included, up to the first chunk an xrun covered (a cover is
    # silence in the dry voice, and a reverb rings on with it): with no xrun, the whole show
    dry_want = np.zeros(n, np.float32)
    dry_want[top:top + m] = offline.dry[:m]
    dry_off = np.abs(voice[:n] - dry_want).reshape(-1, CHUNK).max(axis=1) > 1e-5
    off = np.abs(program[:n] - want).reshape(-1, CHUNK).max(axis=1) > 1e-5
    summary = got["summary"]
    xruns = int(summary["xruns"]) + int(summary["late_edits"])  # type: ignore[index, call-overload]
    covered = int(np.argmax(dry_off)) if dry_off.any() else len(off)
    assert covered == len(off) or xruns > 0, covered  # only an xrun makes the input differ
    assert not off[:covered].any(), (np.nonzero(off)[0][:20], covered, summary)
    assert xruns <= xrun_budget(n // CHUNK), summary  # a loaded machine's doing, if not
    live = program[p_at + top:]
    clicks = np.zeros(len(live), np.float32)
    clicks[np.array(CLICK_BEATS) * BEAT] = 0.5
    # the alto's ballad tail: in the program after her last note, not in her dry voice;
    # the lead's dry chain leaves nothing after his
    alto_end = 7 * BEAT + BEAT // 2
    lead_end = 2 * BEAT + BEAT // 2
    after = slice(alto_end + 100 * MS, alto_end + 600 * MS)
    assert rms_db(offline.program[after]) > rms_db(offline.dry[after]) + 30
    assert rms_db(offline.program[after]) > -60
    quiet = slice(lead_end + 150 * MS, lead_end + 600 * MS)
    assert rms_db(offline.program[quiet]) < -90

    # the status meters each singer, with their chain
    status: dict[str, Any] = got["status"]  # type: ignore[assignment]
    singers = status["singers"]
    assert singers["alto"]["chain"] == "ballad" and singers["lead"]["chain"] == "dry"
    assert singers["lead"]["rms_dbfs"] > -60, singers  # the lead sings in the first second
    assert singers["alto"]["rms_dbfs"] < -90, singers  # the alto not yet

    # chain.set: a bad preset and a parameter the dry chain lacks are refused by name
    bad = got["bad_preset"]
    assert bad["status"] == "error" and "unknown chain preset 'loud'" in str(bad["data"])  # type: ignore[index]
    bad = got["bad_param"]
    assert bad["status"] == "error" and "no 'reverb' effect" in str(bad["data"])  # type: ignore[index]
    assert got["param"]["status"] == "ok", got["param"]  # type: ignore[index]

    # the voice-only output: the voice alone (no click where the program has one), marked
    in_ears: list[AudioChunk] = got["in_ears"]  # type: ignore[assignment]
    first = in_ears[0].t
    ears = np.concatenate([c.samples for c in in_ears])
    at = np.array([p_at + b * BEAT + top for b in CLICK_BEATS]) - first
    at = at[(at > 0) & (at < len(ears))]
    assert len(at) >= 6
    assert np.all(np.abs(program[at + first] - program[at + first - 1]) > 0.25)
    assert np.all(np.abs(ears[at] - ears[at - 1]) < 0.25)
    from singer.provenance.watermark import detect

    found = detect(ears[-5 * SR:], SR)
    assert found.detected, found


def test_render_gives_each_singer_their_chain_and_their_stem(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stage.cli import main

    song = make_song(tmp_path)
    assert main(["render", str(song), "-o", str(tmp_path / "bad.wav"),
                 "--chain", "tenor=pop"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("livesinger: error: --chain tenor=...: no singer 'tenor' in this song "
                       "(singers: lead, alto)")
    assert not (tmp_path / "bad.wav").exists()
    out, stems = tmp_path / "duo.wav", tmp_path / "stems"
    assert main(["render", str(song), "-o", str(out), "--chain", "alto=ballad",
                 "--no-audible-label", "--no-watermark", "--stems", str(stems)]) == 0
    program, _ = sf.read(out, dtype="float32")
    lead, _ = sf.read(stems / "voice-lead.wav", dtype="float32")
    alto, _ = sf.read(stems / "voice-alto.wav", dtype="float32")
    dry, _ = sf.read(stems / "dry.wav", dtype="float32")
    np.testing.assert_allclose(lead + alto, dry, atol=1e-6)
    mix = ProgramMix({"lead": chain_preset("dry"), "alto": chain_preset("ballad")})
    want = render_program({"lead": lead, "alto": alto}, mix, tail_samples=0).program
    clicks = np.zeros(len(program), np.float32)
    clicks[np.array(CLICK_BEATS) * BEAT] = 0.5
    n = len(want)
    np.testing.assert_allclose(program[:n] - clicks[:n], want, atol=1e-5)
    alto_end = 7 * BEAT + BEAT // 2  # the ballad's tail is in the file, past the voice
    assert rms_db(program[alto_end + 100 * MS:alto_end + 600 * MS]) > -60
    assert rms_db(dry[alto_end + 100 * MS:alto_end + 600 * MS]) < -90


def _between_parts(audio: np.ndarray) -> np.ndarray:
    """The stretch where nobody sings (after the lead's last note, before the alto's first:
    song time 1.4 … 2.4 s, the clicks of beats 3 and 4 inside it), found from the first
    sung onset (song time 0)."""
    onset = int(np.argmax(np.abs(audio) > 0.01))
    return audio[onset + int(1.4 * SR):onset + int(2.4 * SR)]


@pytest.mark.timeout(180)
async def test_whep_mix_voice_hears_the_voice_alone_marked(tmp_path: Path) -> None:
    import aiohttp

    from streams.webrtc.whep_client import WhepListener

    song = make_song(tmp_path)
    opts = ServeOptions(osc_port=0, http_port=0, headless=True, audible_label="off",
                        song=str(song))
    ports: dict[str, object] = {}
    handles: dict[str, object] = {}
    ready = asyncio.Event()

    def on_ready(bound: dict[str, object]) -> None:
        ports.update(bound)
        ready.set()

    task = asyncio.ensure_future(serve(opts, on_ready, handles))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        base = f"http://127.0.0.1:{ports['http']}/whep"
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "?mix=backing", data="v=0\r\nm=audio",
                                 headers={"Content-Type": "application/sdp"}) as res:
                refused = (res.status, await res.text())
            program = WhepListener(base, keep_audio=True)
            voice = WhepListener(base + "?mix=voice", keep_audio=True)
            await program.start(http)
            await voice.start(http)
            while min(program.frames, voice.frames) < 25:  # both hear the show: sing now
                await asyncio.sleep(0.05)
            pacer = handles["pacer"]
            xruns = pacer.xruns  # type: ignore[attr-defined]
            play = await UdpOsc(int(ports["osc"])).ask("/livesinger/song/play", 0.0)  # type: ignore[call-overload]
            await asyncio.sleep(4.5)
            xruns = pacer.xruns - xruns  # type: ignore[attr-defined]
            await program.stop(http)
            await voice.stop(http)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert play["status"] == "ok", play
    # a covered chunk moves the song against its onset in the stream: within the budget
    assert xruns <= xrun_budget(4 * 200), xruns
    assert refused[0] == 400 and "mix='backing': want program or voice" in refused[1], refused
    heard = {name: np.concatenate(listener.audio) for name, listener in
             (("program", program), ("voice", voice))}
    for audio in heard.values():
        assert rms_db(audio) > -50  # the song came through both
    clicks = rms_db(_between_parts(heard["program"]))
    alone = rms_db(_between_parts(heard["voice"]))
    assert clicks > -60, clicks  # the backing's two clicks, heard between the parts
    assert alone < clicks - 20, (alone, clicks)  # not in the voice alone
    from singer.provenance.watermark import detect

    assert detect(heard["voice"], SR).detected  # every output is marked
