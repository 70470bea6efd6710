"""Blending captured bones and expressions with the rest (or idle) pose, smoothly.

Each bone and expression has a *presence* weight that rises towards 1 while the capture sees
it and falls towards 0 when it is lost (a limb out of frame, the performer gone), so a lost
limb eases back to rest and a found one eases in: no jumps either way. Observations arrive
at the tracker's rate; poses are asked for at the show's pose rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rigs.lipsync import MOUTH_EXPRESSIONS
from rigs.pose import PoseFrame, Quaternion
from rigs.pose_check import checked_bones, checked_expressions
from rigs.rotation import IDENTITY, q_slerp
from singer.contracts import SAMPLE_RATE_HZ


@dataclass(frozen=True, slots=True)
class BlendOptions:
    """Time constants of presence (seconds)."""

    acquire_s: float = 0.12
    """A newly seen bone reaches 63 % of its captured rotation after this."""
    release_s: float = 0.3
    """A lost bone goes 63 % of the way back to rest after this."""
    stale_s: float = 0.25
    """An observation older than this counts as lost."""


class PoseBlender:
    """Holds the latest capture and blends it over a rest pose: ``observe`` then ``pose``."""

    def __init__(self, options: BlendOptions | None = None) -> None:
        self.options = options or BlendOptions()
        self._bones: dict[str, Quaternion] = {}
        self._expressions: dict[str, float] = {}
        self._seen: set[str] = set()
        self._seen_t = -(1 << 62)
        self._presence: dict[str, float] = {}
        self._last_t: int | None = None
        self.refused = 0
        """Captured bones and expressions left out: unknown names or non-finite values."""

    def reset(self) -> None:
        """Forget everything (the next pose is the rest pose)."""
        self.__init__(self.options)  # type: ignore[misc]

    def observe(self, t: int, bones: dict[str, Quaternion], expressions: dict[str, float]
                ) -> None:
        """A capture at show sample ``t``: the bones and expressions it saw. Bones that are
        not humanoid or not finite rotations, and expressions that are not presets or not
        finite, are left out and counted (``refused``); rotations are made unit length and
        weights clamped to 0..1 (``rigs.pose_check``)."""
        bones, bad_bones = checked_bones(bones)
        expressions, bad_expressions = checked_expressions(expressions)
        self.refused += bad_bones + bad_expressions
        # new dicts, swapped in whole: ``pose`` may run in another thread
        self._bones = {**self._bones, **bones}
        self._expressions = {**self._expressions, **expressions}
        self._seen, self._seen_t = set(bones) | {f"e:{k}" for k in expressions}, t

    @property
    def presence(self) -> float:
        """Largest presence weight: 0 when nothing is captured any more."""
        return max(self._presence.values(), default=0.0)

    def pose(self, t: int, rest_bones: dict[str, Quaternion] | None = None,
             rest_expressions: dict[str, float] | None = None) -> PoseFrame:
        """The pose at show sample ``t``: capture over rest, weighted by presence."""
        rest_bones = rest_bones or {}
        rest_expressions = rest_expressions or {}
        dt = 0.0 if self._last_t is None else max(0.0, (t - self._last_t) / SAMPLE_RATE_HZ)
        self._last_t = t
        captured, captured_expressions = self._bones, self._expressions
        fresh = (t - self._seen_t) / SAMPLE_RATE_HZ <= self.options.stale_s
        up = 1.0 - math.exp(-dt / self.options.acquire_s)
        down = 1.0 - math.exp(-dt / self.options.release_s)
        keys = [*captured, *(f"e:{k}" for k in captured_expressions)]
        for key in keys:
            w = self._presence.get(key, 0.0)
            seen = fresh and key in self._seen
            if dt == 0.0 and seen and key not in self._presence:
                w = 0.0
            w += (1.0 - w) * up if seen else -w * down
            self._presence[key] = w
        bones = dict(rest_bones)
        for name, q in captured.items():
            w = self._presence.get(name, 0.0)
            if w > 1e-4:
                bones[name] = q_slerp(rest_bones.get(name, IDENTITY), q, w)
        expressions = dict(rest_expressions)
        for name, v in captured_expressions.items():
            w = self._presence.get(f"e:{name}", 0.0)
            base = rest_expressions.get(name, 0.0)
            expressions[name] = base + (v - base) * w
        return PoseFrame(t, bones, (0.0, 0.0, 0.0), expressions)


def merge_mouth(singer: dict[str, float], camera: dict[str, float], singer_wins: bool = True,
                threshold: float = 0.05) -> dict[str, float]:
    """Camera expressions with the mouth chosen between the singer's lip-sync and the camera.

    While the singer sings (any mouth weight above ``threshold``) and ``singer_wins``, the
    mouth shapes are the singer's; otherwise the camera's. Non-mouth expressions (blinks,
    gaze, emotions) always come from ``camera``.
    """
    singing = any(singer.get(k, 0.0) > threshold for k in MOUTH_EXPRESSIONS)
    out = {k: v for k, v in camera.items() if k not in MOUTH_EXPRESSIONS}
    camera_mouth = any(k in camera for k in MOUTH_EXPRESSIONS)
    source = singer if (singing and singer_wins) or not camera_mouth else camera
    for k in MOUTH_EXPRESSIONS:
        out[k] = source.get(k, 0.0)
    return out
