"""Several command lines run at once, each a process of its own: checks of how the CLI
answers bad input pay the interpreter's start-up (imports: seconds) once in parallel, not
once per case in a row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_all(commands: list[list[str]], timeout: float = 120, cwd: Path | None = None
            ) -> list[subprocess.CompletedProcess[str]]:
    """Start every ``commands[i]`` (an argv) at once; their results in the same order."""
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=cwd) for argv in commands]
    done = []
    try:
        for argv, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    finally:
        for proc in procs:  # none left behind when one fails or times out
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


def livesinger_all(*cases: list[str], timeout: float = 120
                   ) -> list[subprocess.CompletedProcess[str]]:
    """``python -m stage.cli ARGS`` for each case, all at once."""
    return run_all([[sys.executable, "-m", "stage.cli", *args] for args in cases], timeout)
