"""Cues naming bank voices: a ``voice`` cue scans the voices folders off the event loop (the
show's other cues are answered meanwhile); song lyrics a bank cannot sing are refused at
``song.load``, ``song.play`` and a voice switch while a song plays, and by ``render --voice``,
with one line naming the bank, the note and its syllable, and nothing changes; an expression
cue a bank cannot honour is refused; a bank's character name in any script is cued over real
OSC and MQTT."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from singer.backends.discovery import describe_bank
from singer.backends.live import BankRef, open_bank
from singer.synth import HarmonicNoiseSynth
from stage.cli import main
from stage.director import Director
from stage.pacer import AudioPacer, PacerConfig
from stage.song_loader import local_loader
from streams.cue import CueError, make_cue
from tests.measure import StallWatch
from tests.singer.backends.diffsinger_bank import build_bank as build_ds_bank
from tests.singer.backends.scores import UTAU_SCORE, write_ust
from tests.singer.backends.utau_bank import build_bank

UNSINGABLE = [*UTAU_SCORE[:3], ("妈", 65, 480), *UTAU_SCORE[4:]]
"""The UTAU test score with its 4th entry (3rd note) sung as 妈 (ma): the bank has no ma."""
ODD_NAME = "小测 β・2"
"""A character name in no single script, with a space and a middle dot."""


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voices")
    folder = build_bank(root / "xiaoce", "gbk")
    open_bank(BankRef.of(describe_bank(folder)))  # analysed once (the disk cache serves)
    odd = root / "odd"
    shutil.copytree(folder, odd)
    (odd / "character.txt").write_bytes(f"name={ODD_NAME}\r\n".encode("gb18030"))
    build_ds_bank(root / "tiny")
    return root


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    write_ust(root / "good.ust", UTAU_SCORE)
    write_ust(root / "bad.ust", UNSINGABLE)
    return root


def _director(voices: Path, songs: Path | None = None, voice: str = "soprano",
              extra: tuple[Path, ...] = ()) -> Director:
    director = Director(HarmonicNoiseSynth(device="cpu"), local_loader(), voice=voice,
                        voices_dirs=(*extra, voices), song_folders=[songs] if songs else None)
    director.attach(AudioPacer(director.render, config=PacerConfig(240, 4)))
    return director


async def _cue(director: Director, kind: str, **args: object) -> dict[str, Any]:
    reply = await director.handle(make_cue(kind, args))
    assert isinstance(reply, dict)
    return reply


async def test_song_lyrics_a_bank_cannot_sing_are_refused_and_nothing_changes(
        voices: Path, songs: Path) -> None:
    director = _director(voices, songs, voice=str(voices / "xiaoce"))
    try:
        assert (await _cue(director, "song.load", song="good.ust"))["song"] == "good"
        await _cue(director, "song.play", beat=0.0)
        notes = director.line("lead").notes
        with pytest.raises(CueError) as err:
            await _cue(director, "song.load", song="bad.ust")
        message = str(err.value)
        assert "\n" not in message
        for part in ("voice '小测'", "note 3", "'妈'", "ma"):
            assert part in message, message
        # the previous song keeps playing, its notes unchanged
        assert director.song is not None and director.song.title == "good"
        assert director.status()["playing"] is True
        assert director.line("lead").notes == notes
        # with the built-in voice the song loads; back on the bank, playing it is refused
        await _cue(director, "voice", name="soprano")
        await _cue(director, "song.load", song="bad.ust")
        await _cue(director, "song.play", beat=0.0)
        with pytest.raises(CueError, match="note 3"):  # a switch while it plays: refused
            await _cue(director, "voice", name="xiaoce")
        assert director.line("lead").bank is None
        await _cue(director, "song.stop")
        await _cue(director, "voice", name="xiaoce")  # stopped: the switch is fine
        with pytest.raises(CueError, match="voice '小测' cannot sing this song: .*note 3"):
            await _cue(director, "song.play", beat=0.0)
        assert director.status()["playing"] is False
    finally:
        director.close()


async def test_diffsinger_lyrics_outside_its_dictionary_are_refused_at_load(
        voices: Path, songs: Path) -> None:
    director = _director(voices, songs, voice=str(voices / "tiny"))
    try:
        with pytest.raises(CueError) as err:  # the tiny bank's dictionary has no sa (撒)
            await _cue(director, "song.load", song="good.ust")
        assert "voice 'Tiny Test Singer' cannot sing this song" in str(err.value)
        assert "note 1 ('撒'" in str(err.value), str(err.value)
        assert director.song is None
        with pytest.raises(CueError, match="cannot honour the expression 'breathiness'"):
            await _cue(director, "expr", name="breathiness", value=2.0)
        assert director.line("lead").expression_events == []
        await _cue(director, "expr", name="vibrato_depth", value=2.0)  # this one it honours
    finally:
        director.close()


def test_render_voice_refuses_an_unsingable_lyric_before_rendering(
        voices: Path, songs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.wav"
    code = main(["render", str(songs / "bad.ust"), "-o", str(out), "--voice", "小测",
                 "--voices", str(voices)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "voice '小测' cannot sing this song" in err[0], err
    assert "note 3 ('妈'" in err[0] and "'ma'" in err[0], err
    assert not out.exists()


def _big_voices_folder(root: Path, banks: int = 400, lines: int = 400) -> Path:
    """A voices folder of many UTAU banks (oto.ini files only: describing each reads it)."""
    oto = "\r\n".join(f"s{k}.wav=a{k},0,50,-300,80,20" for k in range(lines))
    for b in range(banks):
        folder = root / f"bank{b:04d}"
        folder.mkdir(parents=True)
        (folder / "oto.ini").write_text(oto, encoding="utf-8")
    return root


async def test_a_voice_cue_scans_the_voices_folders_off_the_event_loop(
        voices: Path, tmp_path: Path) -> None:
    big = _big_voices_folder(tmp_path / "big")
    director = _director(voices, extra=(big,))
    try:
        voice = asyncio.ensure_future(_cue(director, "voice", name="xiaoce"))
        answered_meanwhile = 0
        with StallWatch() as watch:
            while not voice.done():
                reply = await _cue(director, "thump")  # another cue, while the scan runs
                if not voice.done():
                    answered_meanwhile += 1
                assert "thump" in reply
                await asyncio.sleep(0.005)
        assert (await voice)["voice"] == "小测"
        # the scan took many thump round trips: each was answered before the voice cue was;
        # on the loop, none could have been (a stalled machine does not excuse zero)
        assert answered_meanwhile >= 3, (answered_meanwhile, watch.stalled_s)
        assert director.line("lead").bank is not None
    finally:
        director.close()


async def test_a_bank_character_name_in_any_script_is_cued_over_osc(
        voices: Path, tmp_path: Path) -> None:
    from tests.stage.test_serve_live import Engine, UdpOsc

    with pytest.raises(CueError, match="control character"):
        make_cue("voice", {"name": "小测\x07"})
    async with Engine(tmp_path / "rec", voices_dirs=(voices,)) as engine:
        ctl = UdpOsc(engine.osc)
        for name in (ODD_NAME, "小测"):
            reply = await ctl.ask("/livesinger/voice", name)
            assert reply["status"] == "ok", reply
            assert reply["data"]["voice"] == name  # type: ignore[index]
        reply = await ctl.ask("/livesinger/voice", "小测\x07")
        assert reply["status"] == "error" and "control character" in str(reply), reply


async def test_a_bank_character_name_in_any_script_is_cued_over_mqtt(
        voices: Path, tmp_path: Path) -> None:
    from streams.mqtt import MqttBridge
    from tests.streams.test_mqtt import Broker, Watch, pub, start_bridge, stop_bridge

    director = _director(voices)
    broker = Broker(tmp_path)
    await broker.start()
    try:
        bridge = MqttBridge(director, url=broker.url, show="gala", state_period_s=0.5)
        task = await start_bridge(bridge, broker)
        watch = await Watch.start(broker, bridge.topics["reply"])
        try:
            await pub(broker, "livesinger/gala/cmd/voice",
                      json.dumps({"name": ODD_NAME}, ensure_ascii=False))
            answer = await watch.next(10)
        finally:
            await watch.stop()
            await stop_bridge(task)
        assert answer["status"] == "ok", answer
        assert answer["data"]["voice"] == ODD_NAME  # type: ignore[index]
        bank = director.line("lead").bank
        assert bank is not None and bank.name == ODD_NAME
    finally:
        await broker.stop()
        director.close()
