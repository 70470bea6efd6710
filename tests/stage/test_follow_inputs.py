"""Follow mode's part and input chosen by cues during a show (MQTT here; OSC takes the same
``follow/start s:part [s:input]``): a MIDI file in the song folder is followed, every bad
choice is answered in one line while the follower already running goes on, the follower's
state is in the MQTT state, and ``follow/stop`` stops it."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from singer.follow import corpus
from stage.serve import ServeOptions, serve
from tests.stage.test_duet_cli import duet_musicxml
from tests.stage.test_follow_cues import _ready
from tests.stage.test_follow_serve import _midi_file
from tests.streams.test_mqtt import Broker, Watch, pub, sub_one

pytestmark = pytest.mark.timeout(120)

CMD = "livesinger/duet/cmd"
BAD = [  # (input, part, words the one-line error must hold)
    ("notes", "nobody", "no part 'nobody' to follow; parts: 'Performer', 'Idol'"),
    ("midi:../outside.mid", "performer", "inside the song folders"),
    ("../outside.mid", "performer", "inside the song folders"),
    ("midi:missing.mid", "performer", "inside the song folders"),
    ("page", "performer", "does not receive the /perform page's microphone"),
    ("mic:no such card", "performer", "no such card"),
    ("midi:", "performer", "want notes, page, mic"),
]


async def _state(director: object, until: str, at_least: int = 1) -> dict[str, object]:
    for _ in range(400):
        state = director.status()["follow"]  # type: ignore[attr-defined]
        if isinstance(state.get(until), int | float) and state[until] >= at_least:
            return dict(state)
        await asyncio.sleep(0.05)
    raise AssertionError(f"follow never reached {until} >= {at_least}: {state}")


async def test_cues_choose_part_and_input_and_refuse_bad_ones(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    await broker.start()
    songs = tmp_path / "songs"
    songs.mkdir()
    xml = songs / "duet.musicxml"
    duet_musicxml(xml, bars=4)
    perf = corpus.perform(corpus.score_a(4), bpm=126.0, sing=False)
    _midi_file(perf, songs / "perf.mid")
    shutil.copy(songs / "perf.mid", tmp_path / "outside.mid")  # a real file, not offered
    handles: dict[str, object] = {}
    opts = ServeOptions(osc_port=None, http_port=None, headless=True, song=str(xml),
                        songs=songs, audible_label="off", mqtt=broker.url, show="duet")
    task = asyncio.ensure_future(serve(opts, handles=handles))
    replies = None
    try:
        await _ready(handles, task)
        director = handles["director"]
        replies = await Watch.start(broker, "livesinger/duet/reply")
        await pub(broker, f"{CMD}/follow/start",
                  json.dumps({"part": "performer", "input": "midi:perf.mid"}))
        armed = await replies.next(10)
        playing = await _state(director, "events", 3)
        errors = []
        for source, part, _ in BAD:
            await pub(broker, f"{CMD}/follow/start",
                      json.dumps({"part": part, "input": source}))
            errors.append(await replies.next(10))
        after = await _state(director, "events", int(playing["events"]) + 2)  # goes on
        mqtt_state = json.loads(await sub_one(broker, "livesinger/duet/state"))["follow"]
        await pub(broker, f"{CMD}/follow/start", json.dumps({"part": "2", "input": "notes"}))
        switched = await replies.next(10)
        notes_state = director.status()["follow"]  # type: ignore[attr-defined]
        await pub(broker, f"{CMD}/follow/stop", "")
        stopped_reply = await replies.next(10)
        stopped = director.status()["follow"]  # type: ignore[attr-defined]
        assert not task.done()  # nothing of it stopped the show
    finally:
        if replies is not None:
            await replies.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await broker.stop()
    assert armed["status"] == "ok", armed
    assert playing["part"] == "Performer" and playing["input"] == \
        f"midi {(songs / 'perf.mid').resolve()}", playing
    for (source, _, words), reply in zip(BAD, errors, strict=True):
        assert reply["status"] == "error" and words in str(reply["error"]), (source, reply)
        assert "\n" not in str(reply["error"])
    assert after["part"] == "Performer" and after["arms"] == 1 and after["armed"], after
    assert {"beat", "bpm", "confidence"} <= set(mqtt_state) and mqtt_state["armed"], mqtt_state
    assert switched["status"] == "ok" and notes_state["part"] == "Idol" \
        and notes_state["input"] == "note events", notes_state
    assert stopped_reply["status"] == "ok" and stopped == {"armed": False, "arms": 2}
