"""Shared fixtures: keep the audio of a failing test for a listen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.contracts import SAMPLE_RATE_HZ
from tests.machine import MachineReport

_MACHINE: list[MachineReport] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    _MACHINE.append(MachineReport.begin())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how fast the machine was: the real-time tests' outcome depends on it."""
    if _MACHINE:
        terminalreporter.write_line(_MACHINE[0].line())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:  # type: ignore[type-arg]
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture(scope="session", autouse=True)
def engine_threads() -> None:
    """Run the engine in tests as ``serve`` runs it: one torch thread, a short GIL interval
    (torch's spinning workers otherwise starve the synthesis thread beside a browser)."""
    from stage.serve import realtime_threads

    realtime_threads()


@pytest.fixture(autouse=True)
def engine_gc() -> None:
    """Start each test with the heap ``serve`` starts a show with: what earlier tests left
    alive is frozen out of collection (and stays so: each test then collects only what the
    last one left), so a full collection over it cannot stall the clock."""
    from stage.serve import realtime_gc

    realtime_gc()


@pytest.fixture
def keep_audio(request: pytest.FixtureRequest,
               tmp_path: Path) -> Iterator[Callable[[str, np.ndarray], None]]:
    """``keep_audio(name, samples)``: the WAV is written under tmp_path if the test fails."""
    kept: dict[str, np.ndarray] = {}
    yield lambda name, samples: kept.__setitem__(name, samples)
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for name, samples in kept.items():
            path = tmp_path / f"{name}.wav"
            sf.write(path, samples, SAMPLE_RATE_HZ, subtype="FLOAT")
            print(f"kept audio of the failed test: {path}")
