"""MQTT control through a real mosquitto broker, driven by mosquitto_pub and mosquitto_sub."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stage.soak.parts import Broker, free_port  # noqa: F401  (shared with other tests)
from streams.mqtt import MqttBridge
from tests.streams.test_osc import RecordingHandler, until

pytestmark = pytest.mark.timeout(30)

SHOW = "test"
CMD = f"livesinger/{SHOW}/cmd"


async def run(*argv: str, timeout: float = 5.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return int(proc.returncode or 0), out.decode(errors="replace").strip()


async def pub(broker: Broker, topic: str, payload: str | bytes | None = None, *,
              retain: bool = False, tmp: Path | None = None) -> None:
    argv = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic]
    if payload is None:
        argv.append("-n")
    elif isinstance(payload, bytes):  # raw bytes go through a file
        assert tmp is not None
        path = tmp / "payload.bin"
        path.write_bytes(payload)
        argv += ["-f", str(path)]
    else:
        argv += ["-m", payload]
    if retain:
        argv.append("-r")
    code, out = await run(*argv)
    assert code == 0, out


async def sub_one(broker: Broker, topic: str, wait_s: int = 3) -> str:
    """The retained (or next) message on ``topic``, via mosquitto_sub."""
    code, out = await run("mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                          "-t", topic, "-C", "1", "-W", str(wait_s), timeout=wait_s + 2)
    assert code == 0, f"nothing on {topic}: {out}"
    return out


class Watch:
    """A mosquitto_sub subscribed to a topic, line by line."""

    def __init__(self, proc: asyncio.subprocess.Process, topic: str) -> None:
        self.proc, self.topic = proc, topic

    @classmethod
    async def start(cls, broker: Broker, topic: str) -> Watch:
        proc = await asyncio.create_subprocess_exec(
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", topic,
            stdout=asyncio.subprocess.PIPE)
        watch = cls(proc, topic)
        for _ in range(50):  # until it is surely subscribed
            await pub(broker, topic, '{"probe": true}')
            try:
                if await watch.next(0.2) == {"probe": True}:
                    return watch
            except TimeoutError:
                continue
        await watch.stop()
        raise RuntimeError("mosquitto_sub never subscribed")

    async def next(self, timeout: float = 3.0) -> dict[str, object]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        return dict(json.loads(line))

    async def stop(self) -> None:
        self.proc.kill()
        await self.proc.wait()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    b = Broker(tmp_path)
    await b.start()
    yield b
    await b.stop()


@pytest.fixture
def handler() -> RecordingHandler:
    return RecordingHandler()


async def start_bridge(bridge: MqttBridge, broker: Broker) -> asyncio.Task[None]:
    task = asyncio.create_task(bridge.run())
    await until(lambda: bridge.connected)
    await sub_one(broker, bridge.topics["state"])  # published once subscribed
    return task


async def stop_bridge(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def bridge(broker: Broker, handler: RecordingHandler) -> AsyncIterator[MqttBridge]:
    b = MqttBridge(handler, url=broker.url, show=SHOW, state_period_s=0.5)
    task = await start_bridge(b, broker)
    yield b
    await stop_bridge(task)


@pytest.fixture
async def replies(broker: Broker, bridge: MqttBridge) -> AsyncIterator[Watch]:
    watch = await Watch.start(broker, bridge.topics["reply"])
    yield watch
    await watch.stop()


async def test_commands_from_mosquitto_pub_become_cues_with_acks(
        broker: Broker, bridge: MqttBridge, replies: Watch, handler: RecordingHandler) -> None:
    commands: list[tuple[str, str | None]] = [
        ("song/load", '{"song": "jasmine"}'),
        ("song/play", '{"beat": 4}'),
        ("song/play", None),
        ("note/on", '{"pitch": 60, "velocity": 0.8, "syllable": "la"}'),
        ("expr/vibrato_depth", '{"value": 1.5}'),
        ("singer/alto/note/on", '{"pitch": 64.5}'),
        ("go", None),
        ("cue/7/start", "{}"),
    ]
    for topic, payload in commands:
        await pub(broker, f"{CMD}/{topic}", payload)
        assert await replies.next() == {"topic": f"{CMD}/{topic}", "status": "ok",
                                        "data": {"ok": True}}
    assert [(c.kind, c.args, c.singer) for c in handler.cues] == [
        ("song.load", {"song": "jasmine"}, None),
        ("song.play", {"beat": 4.0}, None),
        ("song.play", {"beat": None}, None),
        ("note.on", {"pitch": 60.0, "velocity": 0.8, "syllable": "la"}, None),
        ("expr", {"name": "vibrato_depth", "value": 1.5}, None),
        ("note.on", {"pitch": 64.5, "velocity": 0.8, "syllable": None}, "alto"),
        ("go", {}, None),
        ("cue.start", {"id": "7"}, None),
    ]
    assert handler.cues[0].source == f"mqtt {CMD}/song/load"
    assert bridge.messages_ok == len(commands) and not bridge.errors


async def test_state_and_online_are_retained(broker: Broker, bridge: MqttBridge,
                                             replies: Watch) -> None:
    assert await sub_one(broker, bridge.topics["online"]) == "true"
    assert json.loads(await sub_one(broker, bridge.topics["state"])) == {"cues": 0, "last": None}
    await pub(broker, f"{CMD}/go")
    await replies.next()
    state = await Watch.start(broker, bridge.topics["state"])  # published right after the cue
    try:
        for _ in range(10):
            if (await state.next()) == {"cues": 1, "last": "go"}:
                break
        else:
            raise AssertionError("the state never showed the cue")
    finally:
        await state.stop()


BAD: list[tuple[str, str | bytes, str]] = [
    ("note/on", "not json", "payload is not JSON"),
    ("note/on", b"\xff\xfe{}", "payload is not JSON"),
    ("note/on", "[60, 0.8]", "payload must be a JSON object, got list"),
    ("sing", "{}", f"unknown topic {CMD}/sing (see docs/mqtt.md)"),
    ("auth", '{"token": "x"}', f"unknown topic {CMD}/auth"),
    ("note/on", '{"pitch": 200}', "pitch (MIDI) must be within 0..127, got 200"),
    ("note/on", '{"pitch": 60, "velocity": 2}', "velocity must be within 0..1, got 2"),
    ("note/on", '{"pitch": "C4"}', "pitch (MIDI) must be a number, got str 'C4'"),
    ("note/on", '{"pitch": NaN}', "pitch (MIDI) must be within 0..127, got nan"),
    ("note/on", '{"velocity": 0.5}', "missing field 'pitch'; fields: i:pitch [f:velocity]"),
    ("note/on", '{"pitch": 60, "velocityy": 1}', "unknown field 'velocityy'"),
    ("tempo", '{"bpm": true}', "tempo (bpm) must be a number, got bool True"),
    ("expr/wobble", '{"value": 1}', "unknown expression 'wobble'"),
    ("singer/a*b/go", "{}", "singer 'a*b' may only hold"),
    ("go", '{"id": [1]}', "id must be a string or an integer"),
    ("go", f'{{"reply_to": "{CMD}/go"}}', "reply_to must be a plain topic"),
    ("voice", '{"name": "nope"}', "no voice named 'nope'"),
]


async def test_bad_payloads_get_an_error_naming_the_problem_and_the_bridge_goes_on(
        broker: Broker, bridge: MqttBridge, replies: Watch, handler: RecordingHandler,
        tmp_path: Path) -> None:
    for topic, payload, needle in BAD:
        await pub(broker, f"{CMD}/{topic}", payload, tmp=tmp_path)
        reply = await replies.next()
        assert reply["status"] == "error" and needle in str(reply["error"]), (topic, reply)
        assert reply["topic"] == f"{CMD}/{topic}"
    await pub(broker, f"{CMD}/note/off", '{"pitch": 60}')
    assert (await replies.next())["status"] == "ok"
    assert [c.kind for c in handler.cues] == ["note.off"]
    assert sum(bridge.errors.values()) == len(BAD) and bridge.messages_ok == 1
    assert set(bridge.errors) == {"bad_payload", "unknown_topic", "bad_arguments", "refused"}


async def test_a_command_id_is_applied_once_and_reply_to_is_honoured(
        broker: Broker, bridge: MqttBridge, replies: Watch, handler: RecordingHandler) -> None:
    payload = '{"pitch": 60, "id": "n-1"}'
    await pub(broker, f"{CMD}/note/on", payload)
    assert await replies.next() == {"topic": f"{CMD}/note/on", "id": "n-1", "status": "ok",
                                    "data": {"ok": True}}
    await pub(broker, f"{CMD}/note/on", payload)  # a retry after a lost ack
    assert await replies.next() == {"topic": f"{CMD}/note/on", "id": "n-1", "status": "ok",
                                    "data": {"ok": True}, "duplicate": True}
    assert len(handler.cues) == 1 and bridge.duplicates == 1
    mine = await Watch.start(broker, "desk/replies")
    try:
        await pub(broker, f"{CMD}/note/off", '{"pitch": 60, "id": 7, "reply_to": "desk/replies"}')
        assert await mine.next() == {"topic": f"{CMD}/note/off", "id": 7, "status": "ok",
                                     "data": {"ok": True}}
    finally:
        await mine.stop()
    assert len(handler.cues) == 2


async def test_a_token_is_required_in_every_payload(broker: Broker,
                                                   handler: RecordingHandler) -> None:
    b = MqttBridge(handler, url=broker.url, show=SHOW, token="s3cret")
    task = await start_bridge(b, broker)
    replies = await Watch.start(broker, b.topics["reply"])
    try:
        for payload in ("{}", '{"token": "wrong"}', '{"token": 1}'):
            await pub(broker, f"{CMD}/go", payload)
            reply = await replies.next()
            assert reply["status"] == "error" and "not authorised" in str(reply["error"])
        await pub(broker, f"{CMD}/go", '{"token": "s3cret"}')
        assert (await replies.next())["status"] == "ok"
    finally:
        await replies.stop()
        await stop_bridge(task)
    assert [c.kind for c in handler.cues] == ["go"] and b.errors == {"unauthorised": 3}


def test_urls_and_remote_brokers(handler: RecordingHandler) -> None:
    with pytest.raises(ValueError, match="not on loopback"):
        MqttBridge(handler, url="mqtt://10.1.2.3:1883")
    with pytest.raises(ValueError, match="mqtt://"):
        MqttBridge(handler, url="http://127.0.0.1")
    with pytest.raises(ValueError, match="show"):
        MqttBridge(handler, show="a/b")
    b = MqttBridge(handler, url="mqtt://desk:p%40ss@10.1.2.3:1884")  # broker credentials
    assert (b.host, b.port, b._username, b._password) == ("10.1.2.3", 1884, "desk", "p@ss")
    MqttBridge(handler, url="mqtts://broker.example", token="t")


async def test_a_retained_command_is_never_replayed(broker: Broker,
                                                    handler: RecordingHandler) -> None:
    await pub(broker, f"{CMD}/panic", "{}", retain=True)  # stale, kept by the broker
    replies = await Watch.start(broker, f"livesinger/{SHOW}/reply")
    b = MqttBridge(handler, url=broker.url, show=SHOW)
    task = await start_bridge(b, broker)
    try:
        reply = await replies.next()
        assert reply["status"] == "error" and "retained command ignored" in str(reply["error"])
    finally:
        await replies.stop()
        await stop_bridge(task)
    assert handler.cues == [] and b.errors == {"retained": 1}


@pytest.mark.timeout(40)
async def test_the_bridge_reconnects_after_the_broker_restarts(
        broker: Broker, bridge: MqttBridge, handler: RecordingHandler,
        caplog: pytest.LogCaptureFixture) -> None:
    await pub(broker, f"{CMD}/go")
    await until(lambda: len(handler.cues) == 1)
    await broker.stop()
    await until(lambda: not bridge.connected)
    await asyncio.sleep(1.0)  # attempts fail while it is down
    await broker.start()
    await until(lambda: bridge.connected, timeout=12)
    assert json.loads(await sub_one(broker, bridge.topics["state"]))["cues"] == 1
    assert await sub_one(broker, bridge.topics["online"]) == "true"
    await pub(broker, f"{CMD}/note/on", '{"pitch": 62}')
    await until(lambda: len(handler.cues) == 2)
    assert handler.cues[1].args["pitch"] == 62.0
    assert bridge.outages == 1
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1  # once per outage


@pytest.mark.timeout(40)
async def test_a_stop_while_the_broker_goes_away_is_still_a_stop(
        broker: Broker, handler: RecordingHandler) -> None:
    for _ in range(3):  # the race is between aiomqtt's disconnect and the cancellation
        b = MqttBridge(handler, url=broker.url, show=SHOW)
        task = await start_bridge(b, broker)
        await broker.stop()
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
        assert task.cancelled() and not b.connected
        await broker.start()


BRIDGE_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from streams.mqtt import MqttBridge

    class Handler:
        async def handle(self, cue):
            return None
        def show_sample_at_unix(self, unix_s):
            return 0
        def status(self):
            return {}

    asyncio.run(MqttBridge(Handler(), url=sys.argv[1], show=sys.argv[2]).run())
""")


async def test_online_turns_false_by_the_last_will_when_the_bridge_is_killed(
        broker: Broker) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", BRIDGE_SCRIPT, broker.url,
                                                "killed", cwd=Path(__file__).parents[2])
    try:
        assert await sub_one(broker, "livesinger/killed/online", wait_s=10) == "true"
    finally:
        proc.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the will
        await proc.wait()
    for _ in range(30):
        if await sub_one(broker, "livesinger/killed/online") == "false":
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the last will never said false")


async def test_a_clean_stop_says_offline(broker: Broker, handler: RecordingHandler) -> None:
    b = MqttBridge(handler, url=broker.url, show=SHOW)
    task = await start_bridge(b, broker)
    assert await sub_one(broker, b.topics["online"]) == "true"
    await stop_bridge(task)
    assert await sub_one(broker, b.topics["online"]) == "false"
