"""Consent and licence records of voices, and the show's intended use they are checked against.

A voice's record is a YAML file beside it (docs/provenance.md → "Voice records"): who gave the
voice, the scope of use, the highest use allowed (``personal`` < ``commercial`` <
``corporation``), a credit to show, an expiry, a revocation, and the SHA-256 of the recorded
consent statement (required when a person gave the voice). Built-in voices ship theirs in
``singer/voice_records/``; a voice bank (UTAU, DiffSinger) keeps ``voice.yaml`` in its folder,
or, lacking one, its readme's terms are read and allow personal use only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

USAGES = ("personal", "commercial", "corporation")
"""A show's use, from least to most: a person's non-profit show, a person's paid show, a
company's show."""
RECORDS_DIR = Path(__file__).resolve().parent.parent / "voice_records"
BANK_RECORD_NAMES = ("voice.yaml", "voice.yml", "consent.yaml")
README_NAMES = ("readme.txt", "readme.md", "readme", "character.txt")
_FIELDS = ("voice", "given_by", "synthetic", "scope", "usage", "credit", "expires", "revoked",
           "consent_statement_sha256")
_REQUIRED = ("voice", "given_by", "synthetic", "scope", "usage")


class ConsentError(ValueError):
    """A record that is missing, malformed, or does not allow what the show asks (the message
    names the voice or avatar, the record and what is wrong)."""


def check_usage(usage: str) -> str:
    """``usage`` if it is one of ``USAGES``; ``ConsentError`` otherwise."""
    if usage not in USAGES:
        raise ConsentError(f"usage {usage!r}: want one of {', '.join(USAGES)}")
    return usage


def allows(highest: str, usage: str) -> bool:
    """Whether a record allowing up to ``highest`` covers ``usage``."""
    return USAGES.index(check_usage(usage)) <= USAGES.index(check_usage(highest))


@dataclass(frozen=True, slots=True)
class VoiceRecord:
    """What the owner of a voice allowed (one record file, or a bank's readme terms)."""

    voice: str
    given_by: str
    """The person (or, for a synthetic voice, the maker) who gave the voice."""
    synthetic: bool
    """True when no person's voice was recorded or cloned (a parametric voice)."""
    scope: str
    """What the voice may be used for, in the owner's words."""
    usage: str
    """The highest use allowed: ``personal``, ``commercial`` or ``corporation``."""
    credit: str
    """Credit to show wherever the voice is heard ('' when none is required)."""
    expires: dt.date | None
    revoked: dt.date | None
    consent_statement_sha256: str | None
    source: str
    """Where the record came from (a file path, or 'readme terms of FILE')."""

    def check(self, usage: str, today: dt.date | None = None) -> str:
        """The log line saying this record allows ``usage``; ``ConsentError`` if it does not."""
        today = today or dt.date.today()
        if self.revoked is not None and self.revoked <= today:
            raise ConsentError(f"voice {self.voice}: consent revoked on {self.revoked} "
                               f"({self.source})")
        if self.expires is not None and self.expires < today:
            raise ConsentError(f"voice {self.voice}: consent expired on {self.expires} "
                               f"({self.source})")
        if not allows(self.usage, usage):
            raise ConsentError(f"voice {self.voice}: its record allows {self.usage} use only, "
                               f"not {usage} ({self.source})")
        until = f", until {self.expires}" if self.expires else ""
        consent = ("synthetic, no person's voice" if self.synthetic else
                   f"consent statement sha256 {(self.consent_statement_sha256 or '')[:16]}…")
        return (f"voice {self.voice} allowed for {usage} use by {self.source}: given by "
                f"{self.given_by} ({consent}); up to {self.usage} use{until}")


def _date(value: object, name: str, where: str) -> dt.date | None:
    if value is None or value is False:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConsentError(f"{where}: {name} must be a date YYYY-MM-DD or empty, not {value!r}")


def parse_voice_record(data: Any, where: str, base: Path | None = None) -> VoiceRecord:
    """A record from its parsed YAML; ``ConsentError`` names the field that is wrong."""
    if not isinstance(data, dict):
        raise ConsentError(f"{where}: a voice record is a YAML mapping of "
                           f"{', '.join(_REQUIRED)}, ...")
    missing = [f for f in _REQUIRED if f not in data or data[f] in (None, "")]
    if missing:
        raise ConsentError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = [str(k) for k in data if k not in (*_FIELDS, "consent_statement")]
    if unknown:
        raise ConsentError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for name in ("voice", "given_by", "scope", "usage"):
        if not isinstance(data[name], str):
            raise ConsentError(f"{where}: {name} must be text")
    if not isinstance(data["synthetic"], bool):
        raise ConsentError(f"{where}: synthetic must be true or false")
    if data["usage"] not in USAGES:
        raise ConsentError(f"{where}: usage must be one of {', '.join(USAGES)}, "
                           f"not {data['usage']!r}")
    digest = data.get("consent_statement_sha256")
    if digest is not None:
        if not isinstance(digest, str):
            raise ConsentError(f"{where}: consent_statement_sha256 must be quoted text "
                               f"(YAML read {digest!r} as a number)")
        digest = digest.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConsentError(f"{where}: consent_statement_sha256 must be 64 hex digits")
    elif not data["synthetic"]:
        raise ConsentError(f"{where}: a voice given by a person needs "
                           "consent_statement_sha256 (the SHA-256 of the recorded consent)")
    statement = data.get("consent_statement")
    if statement is not None:
        path = (base or Path(".")) / str(statement)
        try:
            actual = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as err:
            raise ConsentError(f"{where}: consent_statement {path}: {err.strerror}") from None
        if digest is not None and actual != digest:
            raise ConsentError(f"{where}: consent_statement {path} does not match "
                               f"consent_statement_sha256 (it hashes to {actual[:16]}…)")
        digest = actual
    credit = data.get("credit") or ""
    if not isinstance(credit, str):
        raise ConsentError(f"{where}: credit must be text")
    return VoiceRecord(data["voice"], data["given_by"], data["synthetic"], data["scope"],
                       data["usage"], credit, _date(data.get("expires"), "expires", where),
                       _date(data.get("revoked"), "revoked", where), digest, where)


def load_voice_record(path: str | Path) -> VoiceRecord:
    """Read a voice record YAML file; ``ConsentError`` if it is missing or bad."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConsentError(f"{path}: cannot read the voice record ({err.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        raise ConsentError(f"{path}: the voice record is not YAML "
                           f"({' '.join(str(err).split())})") from None
    return parse_voice_record(data, str(path), path.parent)


def builtin_voice_record(name: str) -> VoiceRecord:
    """The shipped record of built-in voice ``name``."""
    path = RECORDS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConsentError(f"voice {name}: no consent record ({path} is missing)")
    record = load_voice_record(path)
    if record.voice != name:
        raise ConsentError(f"{path}: the record is for voice {record.voice!r}, not {name!r}")
    return record


def bank_voice_record(folder: str | Path) -> VoiceRecord:
    """The record of a voice bank folder: its ``voice.yaml``, else its readme's terms (which
    allow personal use only: they are free text no program can read for more)."""
    folder = Path(folder)
    for name in BANK_RECORD_NAMES:
        if (folder / name).is_file():
            return load_voice_record(folder / name)
    files = {p.name.lower(): p for p in folder.iterdir()} if folder.is_dir() else {}
    for name in README_NAMES:
        if name in files:
            terms = files[name].read_bytes()[:4000].decode("utf-8", "replace").strip()
            return VoiceRecord(folder.name, f"the bank's author (terms in {files[name].name})",
                               False, terms.splitlines()[0][:200] if terms else "(empty)",
                               "personal", f"voice: {folder.name}", None, None,
                               hashlib.sha256(files[name].read_bytes()).hexdigest(),
                               f"readme terms of {files[name]}")
    raise ConsentError(f"voice bank {folder}: no consent record ({BANK_RECORD_NAMES[0]}) and no "
                       "readme with terms: add a voice.yaml (docs/provenance.md)")


def voice_record(voice: str) -> VoiceRecord:
    """The record of ``voice``: a built-in voice name, or a voice bank folder."""
    if Path(voice).is_dir():
        return bank_voice_record(voice)
    return builtin_voice_record(voice.strip().lower())
