"""The implicit AIGC label of GB 45438-2025 and its RIFF ``AIGC`` chunk in WAV files.

The label is one JSON object under the key ``AIGC`` with seven fields in a fixed order
(``../shared/REFERENCE.md`` → "Labels, watermark, consent"); in a WAV file it is a RIFF chunk
with id ``AIGC`` whose body is that JSON (UTF-8), per the TC260 practice guide.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import asdict, dataclass, fields
from pathlib import Path

LABEL_AI_GENERATED = "1"
LABEL_VALUES = ("1", "2", "3")
DEFAULT_PRODUCER = "livesinger"
CHUNK_ID = b"AIGC"


class LabelError(ValueError):
    """A missing, malformed or unreadable AIGC label (the message names what is wrong)."""


@dataclass(frozen=True, slots=True)
class AigcLabel:
    """The seven fields, in the standard's order (all strings)."""

    Label: str
    """"1" AI-generated, "2" possibly, "3" suspected."""
    ContentProducer: str
    """Who generated the content (a name or code)."""
    ProduceID: str
    """Unique ID of this piece of content (one per show or render)."""
    ReservedCode1: str
    """Reserved for the producer (e.g. a signature); empty if unused."""
    ContentPropagator: str
    """Who distributes it (on first write: the producer)."""
    PropagateID: str
    """The propagator's ID for it (on first write: ``ProduceID``)."""
    ReservedCode2: str
    """Reserved for the propagator; empty if unused."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if not isinstance(getattr(self, f.name), str):
                raise LabelError(f"AIGC field {f.name} must be a string")
        if self.Label not in LABEL_VALUES:
            raise LabelError(f"AIGC field Label must be one of {', '.join(LABEL_VALUES)}, "
                             f"not {self.Label!r}")
        for name in ("ContentProducer", "ProduceID"):
            if not getattr(self, name):
                raise LabelError(f"AIGC field {name} is empty")

    @classmethod
    def new(cls, producer: str = DEFAULT_PRODUCER, produce_id: str | None = None) -> AigcLabel:
        """A first-write label: AI-generated, a fresh UUID, propagator = producer."""
        pid = produce_id or uuid.uuid4().hex
        return cls(LABEL_AI_GENERATED, producer, pid, "", producer, pid, "")

    @property
    def watermark_id(self) -> int:
        """The 32-bit watermark ID tied to this label: the first 8 hex digits of ProduceID."""
        digits = "".join(c for c in self.ProduceID.lower() if c in "0123456789abcdef")
        if len(digits) >= 8:
            return int(digits[:8], 16)
        return int.from_bytes(uuid.uuid5(uuid.NAMESPACE_OID, self.ProduceID).bytes[:4], "big")

    def to_json(self) -> str:
        """``{"AIGC": {...}}`` with the seven fields in order (UTF-8 text, no ASCII escaping)."""
        return json.dumps({"AIGC": asdict(self)}, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AigcLabel:
        """Parse ``{"AIGC": {...}}`` (or the bare object); ``LabelError`` names what is wrong."""
        try:
            value = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise LabelError(f"AIGC label is not JSON: {err}") from None
        if isinstance(value, dict) and "AIGC" in value:
            value = value["AIGC"]
        if not isinstance(value, dict):
            raise LabelError("AIGC label is not a JSON object")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in value]
        if missing:
            raise LabelError(f"AIGC label lacks field(s) {', '.join(missing)}")
        extra = [k for k in value if k not in names]
        if extra:
            raise LabelError(f"AIGC label has unknown field(s) {', '.join(extra)}")
        if list(value) != names:
            raise LabelError("AIGC label fields are out of order (the standard fixes it: "
                             f"{', '.join(names)})")
        return cls(**value)


def _chunks(data: bytes, path: Path) -> list[tuple[bytes, int, int]]:
    """(id, body offset, body size) of each chunk of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise LabelError(f"{path}: not a RIFF/WAVE file")
    out = []
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if pos + 8 + size > len(data):
            raise LabelError(f"{path}: chunk {cid!r} runs past the end of the file")
        out.append((cid, pos + 8, size))
        pos += 8 + size + (size & 1)
    return out


def write_wav_label(path: str | Path, label: AigcLabel) -> None:
    """Put ``label`` in the WAV file at ``path`` as its ``AIGC`` chunk (replacing any)."""
    path = Path(path)
    data = path.read_bytes()
    kept = [data[off - 8:off + size + (size & 1)]
            for cid, off, size in _chunks(data, path) if cid != CHUNK_ID]
    body = label.to_json().encode("utf-8")
    chunk = CHUNK_ID + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")
    payload = b"WAVE" + b"".join(kept) + chunk
    path.write_bytes(b"RIFF" + struct.pack("<I", len(payload)) + payload)


def read_wav_label(path: str | Path) -> AigcLabel | None:
    """The ``AIGC`` chunk of a WAV file, or None when it has none; ``LabelError`` if bad."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LabelError(f"{path}: {err.strerror or err}") from None
    for cid, off, size in _chunks(data, path):
        if cid == CHUNK_ID:
            try:
                return AigcLabel.from_json(data[off:off + size].decode("utf-8"))
            except UnicodeDecodeError:
                raise LabelError(f"{path}: AIGC chunk is not UTF-8 text") from None
    return None


def read_jsonl_label(path: str | Path) -> AigcLabel | None:
    """The AIGC header record (first line ``{"AIGC": {...}}``) of a JSON-lines file such as a
    recorded ``pose.jsonl``; None when the first line is not one."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            first = f.readline()
    except OSError as err:
        raise LabelError(f"{path}: {err.strerror or err}") from None
    if not first.strip():
        return None  # an empty track
    try:
        value = json.loads(first)
    except (ValueError, UnicodeDecodeError):
        raise LabelError(f"{path}: the first line is not JSON") from None
    if not isinstance(value, dict) or "AIGC" not in value:
        return None
    try:
        return AigcLabel.from_json(first)
    except LabelError as err:
        raise LabelError(f"{path}: {err}") from None


def read_label(path: str | Path) -> AigcLabel | None:
    """The AIGC label of any file the engine writes: WAV (RIFF chunk) or JSON lines (header
    record); ``LabelError`` for another format or a bad label."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return read_jsonl_label(path)
    if path.suffix.lower() in (".wav", ".wave"):
        return read_wav_label(path)
    raise LabelError(f"{path}: no AIGC carrier known for '{path.suffix or 'no suffix'}' "
                     "(WAV and JSON lines are)")
