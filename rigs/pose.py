"""``PoseFrame``: the avatar's pose at one show sample, ready for the wire."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

Quaternion = tuple[float, float, float, float]
"""Rotation as (x, y, z, w), three.js order."""


@dataclass(frozen=True, slots=True)
class PoseFrame:
    """Pose of the avatar for show sample ``t``.

    ``normalized_bones`` maps VRM 1.0 humanoid bone names to rotations of the *normalized*
    bones (relative to the T-pose rest, as three-vrm's ``getNormalizedBoneNode``);
    ``root_position_m`` moves the hips (metres); ``expressions`` maps VRM expression names
    (aa, ih, ou, ee, oh, blink, happy, ...) to weights 0..1.
    """

    t: int
    normalized_bones: dict[str, Quaternion] = field(default_factory=dict)
    root_position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    expressions: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        """Compact, strict JSON for the pose data channel (well under 1 KB); ``ValueError``
        if a number is not finite (``NaN`` is not JSON: browsers refuse the whole frame)."""
        try:
            return json.dumps({
                "t": self.t,
                "b": {k: [round(c, 4) for c in q] for k, q in self.normalized_bones.items()},
                "r": [round(c, 4) for c in self.root_position_m],
                "e": {k: round(v, 3) for k, v in self.expressions.items() if v > 0.001},
            }, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise ValueError(f"pose frame at sample {self.t} holds a non-finite number"
                             ) from None

    @classmethod
    def from_json(cls, text: str) -> PoseFrame:
        """Parse what ``to_json`` wrote (strictly: ``NaN``/``Infinity`` raise ``ValueError``)."""
        data = json.loads(text, parse_constant=_refuse_constant)
        return cls(int(data["t"]), {k: tuple(v) for k, v in data["b"].items()},  # type: ignore[misc]
                   tuple(data["r"]), dict(data["e"]))  # type: ignore[arg-type]


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")
