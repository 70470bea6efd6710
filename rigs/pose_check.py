"""What a pose may hold: the checks at every edge where a pose enters the show or leaves it.

Poses come from outside (VMC in, the camera tracker, the performer's page) and from our own
maths (retargeting, blending, idle motion); they go out as JSON (viewers, the recorder) and
as VMC. Whatever enters is checked here: bone names are VRM 1.0 humanoid names, rotations
are finite quaternions scaled to unit length, expression names are VRM 1.0 presets with
weights clamped to 0..1, the root stays within ``ROOT_LIMIT_M`` of the origin. What leaves
is checked by ``pose_is_finite``: a frame that is still not finite is dropped and counted,
never sent (``JSON.parse`` refuses ``NaN`` and the viewer's avatar would freeze).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence

from rigs.pose import PoseFrame, Quaternion
from rigs.skeleton import HUMANOID_BONES

Vector = tuple[float, float, float]

ROOT_LIMIT_M = 10.0
"""Each root coordinate is clamped to ``[-ROOT_LIMIT_M, ROOT_LIMIT_M]`` metres (a stage)."""
QUATERNION_NORM_RANGE = (0.5, 2.0)
"""A rotation's length must lie in this range to be scaled to unit length; one far from 1
(zero, or 1e30) is not a rotation a sender meant, and is refused."""

EXPRESSION_NAMES: frozenset[str] = frozenset({
    "aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft", "blinkRight",
    "happy", "angry", "sad", "relaxed", "surprised", "neutral",
    "lookUp", "lookDown", "lookLeft", "lookRight",
})
"""The VRM 1.0 preset expressions: the only expression names a pose may carry."""


def finite_number(value: object) -> float | None:
    """``value`` as a finite float; None for NaN, infinities, bools and non-numbers (numpy
    scalars are numbers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        x = float(value)
    except (OverflowError, ValueError):  # an int beyond float range
        return None
    return x if math.isfinite(x) else None


def unit_quaternion(values: Sequence[object]) -> Quaternion | None:
    """(x, y, z, w) scaled to unit length; None unless four finite numbers whose length is
    within ``QUATERNION_NORM_RANGE``."""
    nums = _finite_numbers(values, 4)
    if nums is None:
        return None
    x, y, z, w = nums
    norm = math.hypot(x, y, z, w)  # no overflow for huge components
    if not QUATERNION_NORM_RANGE[0] <= norm <= QUATERNION_NORM_RANGE[1]:
        return None
    return (x / norm, y / norm, z / norm, w / norm)


def bounded_position(values: Sequence[object]) -> Vector | None:
    """(x, y, z) metres, each clamped to ``ROOT_LIMIT_M``; None unless three finite numbers."""
    nums = _finite_numbers(values, 3)
    if nums is None:
        return None
    x, y, z = (min(ROOT_LIMIT_M, max(-ROOT_LIMIT_M, c)) for c in nums)
    return (x, y, z)


def _finite_numbers(values: object, count: int) -> list[float] | None:
    """``count`` finite numbers from a list, tuple or array; None for anything else (a
    number, a string, a mapping, another length, a non-finite member)."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        return None
    try:
        if len(values) != count:  # type: ignore[arg-type]
            return None
    except TypeError:  # an iterable without a length (a generator, a 0-d array)
        return None
    nums = [finite_number(v) for v in values]
    if any(x is None for x in nums):
        return None
    return nums  # type: ignore[return-value]


def expression_weight(value: object) -> float | None:
    """A weight clamped to 0..1; None unless a finite number."""
    x = finite_number(value)
    return None if x is None else min(1.0, max(0.0, x))


def checked_bones(bones: Mapping[str, Sequence[object]]) -> tuple[dict[str, Quaternion], int]:
    """The bones with humanoid names and usable rotations (made unit), and how many were
    refused."""
    out: dict[str, Quaternion] = {}
    for name, q in bones.items():
        unit = unit_quaternion(q) if name in HUMANOID_BONES else None
        if unit is not None:
            out[name] = unit
    return out, len(bones) - len(out)


def checked_expressions(expressions: Mapping[str, object]) -> tuple[dict[str, float], int]:
    """The preset expressions with finite weights (clamped to 0..1), and how many were
    refused."""
    out: dict[str, float] = {}
    for name, value in expressions.items():
        weight = expression_weight(value) if name in EXPRESSION_NAMES else None
        if weight is not None:
            out[name] = weight
    return out, len(expressions) - len(out)


def pose_is_finite(frame: PoseFrame) -> bool:
    """Whether every number of ``frame`` is finite (it can be written as strict JSON)."""
    isfinite = math.isfinite
    return (all(isfinite(c) for q in frame.normalized_bones.values() for c in q)
            and all(isfinite(c) for c in frame.root_position_m)
            and all(isfinite(v) for v in frame.expressions.values()))
