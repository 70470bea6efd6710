"""Ports on the command line: a bad one is an argparse error, a taken one is one line naming
the surface, host and port, exit 2, with nothing left running or half written."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stage.serve import ServeOptions, serve
from streams.listen import ListenError
from tests.stage.cli_runs import run_all

ROOT = Path(__file__).resolve().parents[2]
LIVESINGER = str(ROOT / ".venv" / "bin" / "livesinger")

pytestmark = pytest.mark.timeout(240)


def livesinger(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LIVESINGER, *args], capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=ROOT)


def free_port() -> int:
    """A port free on both UDP and TCP (for a moment)."""
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def is_free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def held_udp() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def held_tcp() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


BAD = [
    (["serve", "--osc-port", "99999"], "argument --osc-port: 99999 is not a port"),
    (["serve", "--osc-port", "nine"], "argument --osc-port: 'nine' is not a port number"),
    (["serve", "--http-port", "-1"], "argument --http-port: -1 is not a port"),
    (["serve", "--vmc-out", "127.0.0.1:70000"], "argument --vmc-out: '127.0.0.1:70000': port"),
    (["serve", "--vmc-out", "nohost"], "argument --vmc-out: 'nohost': want HOST:PORT"),
    (["serve", "--mqtt", "mqtt://127.0.0.1:99999"], "argument --mqtt: 'mqtt://127.0.0.1:99999':"
                                                    " port must be 1..65535"),
    (["serve", "--mqtt", "http://broker"], "argument --mqtt: 'http://broker': want mqtt://"),
    (["serve", "--mocap", "vmc:70000"], "argument --mocap: 'vmc:70000': 70000 is not a port"),
    (["serve", "--ice-server", "stun:10.0.0.1:0"], "argument --ice-server: 'stun:10.0.0.1:0': "
                                                   "port must be 1..65535"),
    (["serve", "--ice-server", "https://stun.example"], "argument --ice-server:"),
    (["demo", "--http-port", "65536"], "argument --http-port: 65536 is not a port"),
    (["mocap", "--source", "vmc:99999"], "argument --source: 'vmc:99999': 99999 is not a port"),
    (["mocap", "--source", "x.mp4", "--vmc-out", "h:0"], "argument --vmc-out: 'h:0': port"),
]


@pytest.fixture(scope="module")
def bad_port_runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """Every ``BAD`` command line run once, all at once (each pays seconds of imports)."""
    runs = run_all([[LIVESINGER, *argv] for argv, _ in BAD], timeout=120, cwd=ROOT)
    return {" ".join(argv): done for (argv, _), done in zip(BAD, runs, strict=True)}


@pytest.mark.parametrize(("argv", "needle"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_port_is_refused_by_the_parser(
        argv: list[str], needle: str,
        bad_port_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    done = bad_port_runs[" ".join(argv)]
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and needle in errors[0], done.stderr


def test_an_osc_port_taken_on_udp_is_one_line_and_nothing_is_written(
        held_udp: int, tmp_path: Path) -> None:
    record = tmp_path / "rec"
    done = livesinger("serve", "--headless", "--osc-port", str(held_udp), "--http-port", "0",
                      "--record", str(record))
    assert done.returncode == 2
    assert done.stderr == (f"livesinger: error: OSC cannot listen on 127.0.0.1:{held_udp}/udp: "
                           "address already in use\n")
    assert not record.exists()  # no recording was started, so none is half written


def test_ports_taken_on_tcp_name_the_surface(held_tcp: int) -> None:
    osc, http = run_all([
        [LIVESINGER, "serve", "--headless", "--osc-port", str(held_tcp), "--http-port", "0"],
        [LIVESINGER, "serve", "--headless", "--osc-port", "0", "--http-port", str(held_tcp)]],
        cwd=ROOT)
    done = osc
    assert (done.returncode, done.stderr) == (2, f"livesinger: error: OSC cannot listen on "
                                                 f"127.0.0.1:{held_tcp}/tcp: address already "
                                                 "in use\n")
    done = http
    assert (done.returncode, done.stderr) == (2, f"livesinger: error: HTTP cannot listen on "
                                                 f"127.0.0.1:{held_tcp}/tcp: address already "
                                                 "in use\n")


async def test_a_failed_start_leaves_no_socket_task_or_thread(held_tcp: int,
                                                              tmp_path: Path) -> None:
    http = free_port()
    threads = set(threading.enumerate())
    opts = ServeOptions(osc_port=held_tcp, http_port=http, headless=True, record=tmp_path / "r")
    with pytest.raises(ListenError, match=f"OSC cannot listen on 127.0.0.1:{held_tcp}/tcp"):
        await serve(opts)
    # the web server (started first) and OSC's UDP socket (bound before its TCP failed) are
    # closed again: both ports can be bound by someone else
    assert is_free(http, socket.SOCK_STREAM)
    assert is_free(held_tcp, socket.SOCK_DGRAM)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    started = {t for t in threading.enumerate() if t.is_alive()} - threads
    # the loop's own executor (asyncio.to_thread) is shut down by asyncio.run, not by serve
    assert {t.name for t in started if not t.name.startswith("asyncio_")} == set()
    assert not (tmp_path / "r").exists()
