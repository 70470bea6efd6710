"""MQTT command payloads and topics (``streams.mqtt.MqttBridge.command``): any topic and
payload end in an ``ok`` reply or an ``error`` reply with a one-line reason; the bridge never
raises, and the reply is always JSON it can publish."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streams.cue import Cue
from streams.mqtt import MqttBridge
from tests.fuzz.strategies import NASTY_TEXT, mutated

pytestmark = pytest.mark.timeout(60)

PREFIX = "livesinger/fuzz/cmd/"
PATHS = st.sampled_from(["note/on", "note/off", "song/load", "song/play", "song/seek", "go",
                         "tempo", "lyric", "voice", "expr/volume", "expr/nope", "cue/1/start",
                         "singer/alto/note/on", "singer/a+b/go", "auth", "panic", "#", ""])
FIELDS = st.sampled_from(["pitch", "velocity", "syllable", "song", "beat", "bpm", "text",
                          "name", "value", "id", "reply_to", "token", "extra"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | NASTY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)
OBJECTS = st.dictionaries(FIELDS, JSON_VALUES, max_size=5).map(
    lambda d: json.dumps(d).encode())
PAYLOADS = st.one_of(OBJECTS, mutated(OBJECTS), st.binary(max_size=100),
                     JSON_VALUES.map(lambda v: json.dumps(v).encode()),
                     st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n))
TOPICS = st.one_of(PATHS.map(lambda p: PREFIX + p),
                   NASTY_TEXT.map(lambda p: PREFIX + p), NASTY_TEXT)


class _Handler:
    async def handle(self, cue: Cue) -> object:
        return {"kind": cue.kind}

    def show_sample_at_unix(self, unix_s: float) -> int:
        return 0

    def status(self) -> dict[str, object]:
        return {}


def check(bridge: MqttBridge, topic: str, payload: bytes) -> dict[str, object]:
    reply_topic, reply = asyncio.run(bridge.command(topic, payload))
    assert isinstance(reply_topic, str) and reply_topic
    json.dumps(reply, default=str)
    assert reply["status"] in ("ok", "error")
    if reply["status"] == "error":
        error = reply["error"]
        assert isinstance(error, str) and error and len(error.splitlines()) == 1, error
    return reply


@given(TOPICS, PAYLOADS)
@example(PREFIX + "a\nb", b"")  # found: the topic's newline split the error in two lines
@example(PREFIX + "cue/a\nb/start", b"")
def test_any_command_gets_a_reply_never_an_exception(topic: str, payload: bytes) -> None:
    bridge = MqttBridge(_Handler(), show="fuzz")
    check(bridge, topic, payload)
    assert bridge.errors["internal"] == 0


@given(TOPICS, PAYLOADS)
def test_with_a_token_nothing_without_it_applies(topic: str, payload: bytes) -> None:
    bridge = MqttBridge(_Handler(), show="fuzz", token="s3cret-token")
    reply = check(bridge, topic, payload)
    if reply["status"] == "ok":
        assert json.loads(payload)["token"] == "s3cret-token"
