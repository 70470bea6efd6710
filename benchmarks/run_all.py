"""Run every benchmark (``--smoke`` for the short CI version) and print JSON lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    """Run each ``bench_*.py`` beside this file in turn."""
    status = 0
    for script in sorted(HERE.glob("bench_*.py")):
        done = subprocess.run([sys.executable, str(script), *sys.argv[1:]], check=False)
        status = status or done.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
