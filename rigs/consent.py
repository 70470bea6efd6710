"""An avatar's licence: the VRM ``meta`` (1.0 and 0.x) and what it allows a show to do.

VRM 1.0 fields (``../shared/REFERENCE.md`` → "Labels, watermark, consent"): who may perform
as the avatar (``avatarPermission``), the commercial use allowed (``commercialUsage``: a
person's non-profit use, a person's paid use, a company's), whether the author must be
credited, the ``allow…`` flags, ``modification`` and the licence URLs. Fields a file leaves
out take the VRM 1.0 specification's defaults (the most restrictive). VRM 0.x's
``commercialUssageName`` Allow/Disallow maps to corporation/personal use.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rigs.avatar import AvatarError, read_vrm
from singer.provenance.consent import ConsentError, allows

COMMERCIAL_TO_USAGE = {"personalNonProfit": "personal", "personalProfit": "commercial",
                       "corporation": "corporation"}
DEFAULTS_1_0: dict[str, Any] = {
    "avatarPermission": "onlyAuthor", "commercialUsage": "personalNonProfit",
    "creditNotation": "required", "allowExcessivelyViolentUsage": False,
    "allowExcessivelySexualUsage": False, "allowPoliticalOrReligiousUsage": False,
    "allowAntisocialOrHateUsage": False, "allowRedistribution": False,
    "modification": "prohibited", "licenseUrl": "", "otherLicenseUrl": ""}
"""What VRM 1.0 says an absent field means."""
_ENUMS = {"avatarPermission": ("onlyAuthor", "onlySeparatelyLicensedPerson", "everyone"),
          "commercialUsage": tuple(COMMERCIAL_TO_USAGE),
          "creditNotation": ("required", "unnecessary"),
          "modification": ("prohibited", "allowModification",
                           "allowModificationRedistribution")}


@dataclass(frozen=True, slots=True)
class AvatarLicence:
    """The licence of one avatar file, normalised to VRM 1.0 terms."""

    path: str
    name: str
    authors: tuple[str, ...]
    spec_version: str
    meta: dict[str, Any] = field(default_factory=dict)
    """The VRM 1.0 licence fields (defaults filled in), in the specification's names."""
    defaulted: tuple[str, ...] = ()
    """Fields the file left out (their VRM 1.0 default applies)."""

    @property
    def usage(self) -> str:
        """The highest show use allowed: personal, commercial or corporation."""
        return COMMERCIAL_TO_USAGE[self.meta["commercialUsage"]]

    @property
    def credit(self) -> str:
        """The credit to show ('' when ``creditNotation`` is ``unnecessary``)."""
        if self.meta["creditNotation"] != "required":
            return ""
        by = ", ".join(self.authors) or "its author"
        return f"avatar: {self.name or Path(self.path).stem} by {by}"

    def check(self, usage: str) -> str:
        """The log line saying the meta allows ``usage``; ``ConsentError`` if it does not."""
        if not allows(self.usage, usage):
            raise ConsentError(
                f"avatar {self.path}: its VRM meta allows commercialUsage "
                f"{self.meta['commercialUsage']} ({self.usage} use), not {usage} use")
        terms = ", ".join(f"{k}={self.meta[k]}" for k in
                          ("avatarPermission", "commercialUsage", "creditNotation",
                           "modification", "allowRedistribution"))
        extra = f"; defaults for {', '.join(self.defaulted)}" if self.defaulted else ""
        return (f"avatar {self.name or self.path} allowed for {usage} use by its VRM "
                f"{self.spec_version} meta ({terms}; licence "
                f"{self.meta['licenseUrl'] or 'unstated'}{extra})")


def _json_chunk(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    doc: dict[str, Any] = json.loads(data[20:20 + length])
    return doc


def read_avatar_licence(path: str | Path) -> AvatarLicence:
    """The licence of a ``.vrm`` file; ``AvatarError`` if it is not an avatar, ``ConsentError``
    if its meta holds a value VRM does not define."""
    path = Path(path)
    summary = read_vrm(path)  # validates the file (clear errors for broken ones)
    extensions = _json_chunk(path).get("extensions") or {}
    if "VRMC_vrm" in extensions:
        raw = extensions["VRMC_vrm"].get("meta") or {}
        authors = tuple(str(a) for a in raw.get("authors") or ())
        meta = {k: raw.get(k, d) for k, d in DEFAULTS_1_0.items()}
        defaulted = tuple(k for k in DEFAULTS_1_0 if k not in raw)
    else:
        raw = extensions["VRM"].get("meta") or {}
        authors = (str(raw["author"]),) if raw.get("author") else ()
        commercial = raw.get("commercialUssageName", "Disallow")
        allowed_user = {"OnlyAuthor": "onlyAuthor", "ExplicitlyLicensedPerson":
                        "onlySeparatelyLicensedPerson", "Everyone": "everyone"}
        meta = dict(DEFAULTS_1_0)
        meta.update(
            avatarPermission=allowed_user.get(raw.get("allowedUserName", ""), "onlyAuthor"),
            commercialUsage="corporation" if commercial == "Allow" else "personalNonProfit",
            allowExcessivelyViolentUsage=raw.get("violentUssageName") == "Allow",
            allowExcessivelySexualUsage=raw.get("sexualUssageName") == "Allow",
            licenseUrl=str(raw.get("otherPermissionUrl") or raw.get("licenseName") or ""))
        defaulted = ("creditNotation", "modification", "allowRedistribution")
    for name, values in _ENUMS.items():
        if meta[name] not in values:
            raise ConsentError(f"avatar {path}: meta {name} {meta[name]!r} is not one of "
                               f"{', '.join(values)}")
    return AvatarLicence(str(path), summary.name, authors, summary.spec_version, meta,
                         defaulted)


__all__ = ["AvatarError", "AvatarLicence", "ConsentError", "read_avatar_licence"]
