"""A show's provenance: its AIGC label, the licences that allowed its voice and avatar, the
credits they require, and the explicit label every surface shows (``/status``, MQTT ``state``,
the stage page, WHEP)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from singer.provenance.aigc import AigcLabel
from singer.provenance.consent import ConsentError, voice_record
from streams.cue import Cue, CueHandler

log = logging.getLogger("livesinger.consent")

LABEL_TEXT = {"zh": "AI生成", "en": "AI-generated"}
"""The explicit label by the show's language (GB 45438-2025: 'AI' with '生成')."""


@dataclass
class ShowProvenance:
    """What a running show says about itself: label, use, credits, audible label setting."""

    label: AigcLabel
    usage: str
    audible_label: str
    credits: list[str] = field(default_factory=list)
    allowed_by: list[str] = field(default_factory=list)
    """One line per voice and avatar: the record that allowed it."""
    language: Callable[[], str | None] = lambda: None
    """The language of the song on stage (``zh``, ``en``) or None."""

    def allow_voice(self, voice: str) -> None:
        """Check ``voice`` against its record for this show's use; log the record that allowed
        it and keep its credit. ``ConsentError`` when it is not allowed."""
        record = voice_record(voice)
        self._allowed(record.check(self.usage), record.credit)

    def allow_avatar(self, path: Path) -> None:
        """Check the avatar at ``path`` against its VRM meta likewise."""
        from rigs.consent import read_avatar_licence

        licence = read_avatar_licence(path)
        self._allowed(licence.check(self.usage), licence.credit)

    def _allowed(self, line: str, credit: str) -> None:
        self.allowed_by.append(line)
        log.info("%s", line)
        if credit and credit not in self.credits:
            self.credits.append(credit)

    def announce(self) -> None:
        """Say on stderr, once the show is serving, which record allowed each voice and avatar
        (a start that fails before then says only what failed)."""
        for line in self.allowed_by:
            print(f"livesinger: licence: {line}", file=sys.stderr, flush=True)

    def to_json(self) -> dict[str, object]:
        """The ``aigc`` field of the show's status."""
        lang = self.language() or "en"
        return {"ai_generated": True, "label": self.label.Label,
                "text": LABEL_TEXT.get(lang, LABEL_TEXT["en"]), "language": lang,
                "producer": self.label.ContentProducer, "produce_id": self.label.ProduceID,
                "watermark_id": f"{self.label.watermark_id:08x}",
                "audible_label": self.audible_label, "usage": self.usage,
                "credits": list(self.credits)}

    def header(self) -> str:
        """The ``AIGC-Label`` HTTP header value: the label's JSON, ASCII-escaped."""
        import json

        return json.dumps({"AIGC": json.loads(self.label.to_json())["AIGC"]},
                          separators=(",", ":"))


class WithProvenance:
    """Passes cues to ``handler``; its ``status()`` also says ``"aigc": {...}``."""

    def __init__(self, handler: CueHandler, provenance: ShowProvenance) -> None:
        self._handler = handler
        self.provenance = provenance

    async def handle(self, cue: Cue) -> object:
        """Apply or schedule ``cue`` (the show's own handler decides)."""
        return await self._handler.handle(cue)

    def show_sample_at_unix(self, unix_s: float) -> int:
        """The show sample that plays at a wall-clock time (the show's own handler says)."""
        return self._handler.show_sample_at_unix(unix_s)

    def status(self) -> dict[str, object]:
        """The show's status plus its AIGC label and credits."""
        status = dict(self._handler.status())
        status["aigc"] = self.provenance.to_json()
        return status


__all__ = ["ConsentError", "LABEL_TEXT", "ShowProvenance", "WithProvenance"]
