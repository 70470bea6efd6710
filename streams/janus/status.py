"""The show's cue handler with the Janus publishers' state added to its status (``/status``,
MQTT ``state``), so a director sees a publisher go down and come back."""

from __future__ import annotations

from collections.abc import Sequence

from streams.cue import Cue, CueHandler
from streams.janus.publisher import JanusPublisher


class WithPublishers:
    """Passes cues to ``handler``; its ``status()`` also says ``"publish": [...]``."""

    def __init__(self, handler: CueHandler, publishers: Sequence[JanusPublisher]) -> None:
        self._handler = handler
        self.publishers = tuple(publishers)

    async def handle(self, cue: Cue) -> object:
        """Apply or schedule ``cue`` (the show's own handler decides)."""
        return await self._handler.handle(cue)

    def show_sample_at_unix(self, unix_s: float) -> int:
        """The show sample that plays at a wall-clock time (the show's own handler says)."""
        return self._handler.show_sample_at_unix(unix_s)

    def status(self) -> dict[str, object]:
        """The show's status plus each publisher's state."""
        status = dict(self._handler.status())
        status["publish"] = [p.stats() for p in self.publishers]
        return status
