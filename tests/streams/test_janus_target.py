"""``--publish janus:...`` targets: read exactly, refused with one line naming what is wrong
(by the parser: exit 2, nothing started), and never echoing the room's secret."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from stage.serve import ServeError, ServeOptions, check_options
from streams.janus.target import JanusTarget, JanusTargetError, parse_target

ROOT = Path(__file__).resolve().parents[2]

GOOD = [
    ("janus:http://127.0.0.1:8088/janus?room=1234",
     JanusTarget("http://127.0.0.1:8088/janus", 1234)),
    ("janus:https://sfu.example:8089/janus?room=7&secret=s3&pin=42&display=idol",
     JanusTarget("https://sfu.example:8089/janus", 7, "s3", "42", "idol")),
    ("janus:http://10.0.0.5:8088?room=1", JanusTarget("http://10.0.0.5:8088/janus", 1)),
]

BAD = [
    ("http://127.0.0.1:8088/janus?room=1", "want janus:http://HOST:PORT/janus?room=N"),
    ("janus:ws://127.0.0.1:8188?room=1", "an http or https URL"),
    ("janus:http://127.0.0.1:8088/janus", "no room (add ?room=N)"),
    ("janus:http://127.0.0.1:8088/janus?room=abc", "room 'abc' is not a number"),
    ("janus:http://127.0.0.1:8088/janus?room=0", "room '0' is not a number"),
    ("janus:http://127.0.0.1:99999/janus?room=1", "the port is not a number 0..65535"),
    ("janus:http://127.0.0.1:8088/janus?room=1&colour=red", "unknown parameter 'colour'"),
    ("janus:http://127.0.0.1:8088/janus?room=1&room=2", "'room' given twice"),
]


@pytest.mark.parametrize(("text", "target"), GOOD, ids=[t for t, _ in GOOD])
def test_targets_are_read_exactly(text: str, target: JanusTarget) -> None:
    assert parse_target(text) == target
    assert "s3" not in str(parse_target(text))  # logs and /status never show the secret


@pytest.mark.parametrize(("text", "needle"), BAD, ids=[t for t, _ in BAD])
def test_bad_targets_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(JanusTargetError, match=re.escape(needle)):
        parse_target(text)
    with pytest.raises(ServeError, match="--publish"):
        check_options(ServeOptions(publish=(text,)))


def test_the_command_line_refuses_a_bad_target_with_one_line() -> None:
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "livesinger"), "serve", "--headless",
                           "--publish", "janus:http://127.0.0.1:8088/janus?room=x"],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --publish:" in errors[0] and \
        "room 'x' is not a number" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
