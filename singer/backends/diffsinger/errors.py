"""The one error a DiffSinger bank raises: what is wrong, and in which file (and field/line)."""

from __future__ import annotations

from pathlib import Path


class BankError(ValueError):
    """A bank that cannot be loaded or sung as asked; the message names the file at fault.

    ``path`` is the file (or folder) at fault; ``where`` a field, line or input name in it.
    """

    def __init__(self, path: Path | str, problem: str, where: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.where = where
        at = f"{self.path}" + (f" ({where})" if where else "")
        super().__init__(f"{at}: {problem}")
