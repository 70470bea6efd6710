"""Pose and expression inputs (``rigs.pose_check``, through ``rigs.blend.PoseBlender``): any
values a capture source or a peer may hand over are kept (checked, made unit, clamped) or
refused and counted; the blended pose is always strict JSON."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rigs.blend import PoseBlender
from rigs.pose_check import (
    bounded_position,
    expression_weight,
    finite_number,
    unit_quaternion,
)
from rigs.skeleton import HUMANOID_BONES
from tests.fuzz.strategies import NASTY_TEXT

pytestmark = pytest.mark.timeout(60)

NUMBERS = st.one_of(
    st.floats(), st.integers(), st.integers(-10**400, 10**400), st.booleans(), st.none(),
    NASTY_TEXT, st.fractions().map(lambda f: f * Fraction(10**330)),
    st.floats(width=32).map(np.float32), st.integers(-2**63, 2**63 - 1).map(np.int64))
VALUES = st.one_of(NUMBERS, st.lists(NUMBERS, max_size=6), st.tuples(NUMBERS, NUMBERS),
                   st.dictionaries(NASTY_TEXT, NUMBERS, max_size=4), NASTY_TEXT.map(list))
NAMES = st.sampled_from(sorted(HUMANOID_BONES) + ["aa", "blink", "happy"]) | NASTY_TEXT


@given(VALUES)
@example(0.0)  # found: a number where a rotation belongs raised TypeError (no len())
def test_checks_take_anything_and_return_finite_values_or_none(value: object) -> None:
    x = finite_number(value)
    assert x is None or math.isfinite(x)
    w = expression_weight(value)
    assert w is None or 0.0 <= w <= 1.0
    q = unit_quaternion(value)  # type: ignore[arg-type]
    assert q is None or abs(math.hypot(*q) - 1.0) < 1e-9
    p = bounded_position(value)  # type: ignore[arg-type]
    assert p is None or all(math.isfinite(c) for c in p)


@given(st.dictionaries(NAMES, VALUES, max_size=6), st.dictionaries(NAMES, VALUES, max_size=6),
       st.integers(0, 10**9))
@example({"chest": 0.0}, {}, 0)
def test_the_blender_takes_any_observation(bones: dict, expressions: dict, t: int) -> None:
    blender = PoseBlender()
    blender.observe(t, bones, expressions)
    frame = blender.pose(t + 480)
    frame.to_json()
    assert blender.refused <= len(bones) + len(expressions)
