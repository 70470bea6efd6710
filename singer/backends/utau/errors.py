"""The one error a malformed UTAU bank raises: it names the file and, where there is one, the
line."""

from __future__ import annotations

from pathlib import Path


class BankError(ValueError):
    """A bank file that cannot be used as it is: ``path:line: what is wrong``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        where = f"{self.path}:{line}" if line else str(self.path)
        super().__init__(f"{where}: {message}")


class UnknownSyllableError(BankError):
    """A syllable the bank has no sample (alias) for."""
