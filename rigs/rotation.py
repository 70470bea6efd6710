"""Quaternion and frame maths for retargeting: pure numpy, quaternions as (x, y, z, w).

Rotations act on column vectors in a right-handed frame (three.js: X left-of-avatar, Y up,
Z forward for a VRM 1.0 model). ``q_mul(a, b)`` applies ``b`` first, then ``a``.
"""

from __future__ import annotations

import math

import numpy as np

from rigs.pose import Quaternion

IDENTITY: Quaternion = (0.0, 0.0, 0.0, 1.0)
_EPS = 1e-9


def normalize(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to unit length (zero stays zero)."""
    n = float(np.linalg.norm(v))
    return v / n if n > _EPS else np.zeros_like(v)


def q_mul(a: Quaternion, b: Quaternion) -> Quaternion:
    """Hamilton product ``a * b`` (rotate by ``b``, then by ``a``)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz)


def q_inv(q: Quaternion) -> Quaternion:
    """Inverse of a unit quaternion."""
    return (-q[0], -q[1], -q[2], q[3])


def q_normalize(q: Quaternion) -> Quaternion:
    """Unit quaternion with ``w >= 0`` (one canonical sign)."""
    n = math.sqrt(sum(c * c for c in q)) or 1.0
    s = 1.0 / n if q[3] >= 0 else -1.0 / n
    return (q[0] * s, q[1] * s, q[2] * s, q[3] * s)


def q_rotate(q: Quaternion, v: np.ndarray) -> np.ndarray:
    """Vector ``v`` (3,) rotated by ``q``."""
    u = np.array(q[:3])
    w = q[3]
    return np.asarray(v + 2.0 * np.cross(u, np.cross(u, v) + w * v))


def q_axis_angle(axis: np.ndarray | tuple[float, float, float], radians: float) -> Quaternion:
    """Rotation by ``radians`` about ``axis`` (normalized here)."""
    a = normalize(np.asarray(axis, dtype=float))
    s = math.sin(radians / 2)
    return (float(a[0] * s), float(a[1] * s), float(a[2] * s), math.cos(radians / 2))


def q_angle(a: Quaternion, b: Quaternion) -> float:
    """Angle in radians of the rotation taking ``a`` to ``b`` (sign-insensitive)."""
    dot = abs(sum(x * y for x, y in zip(a, b, strict=True)))
    return 2.0 * math.acos(min(1.0, dot))


def q_slerp(a: Quaternion, b: Quaternion, t: float) -> Quaternion:
    """Spherical interpolation from ``a`` (t=0) to ``b`` (t=1) along the shorter arc."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    if dot < 0:
        b = (-b[0], -b[1], -b[2], -b[3])
        dot = -dot
    if dot > 0.9995:
        return q_normalize(tuple(x + t * (y - x) for x, y in zip(a, b, strict=True)))  # type: ignore[arg-type]
    theta = math.acos(dot)
    s = math.sin(theta)
    wa = math.sin((1 - t) * theta) / s
    wb = math.sin(t * theta) / s
    return q_normalize(tuple(wa * x + wb * y for x, y in zip(a, b, strict=True)))  # type: ignore[arg-type]


def q_from_to(src: np.ndarray, dst: np.ndarray) -> Quaternion:
    """Shortest-arc rotation (the swing) taking direction ``src`` onto ``dst``."""
    a, b = normalize(src), normalize(dst)
    dot = float(np.dot(a, b))
    if dot < -1.0 + 1e-7:  # opposite: any perpendicular axis
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        return q_axis_angle(axis, math.pi)
    c = np.cross(a, b)
    return q_normalize((float(c[0]), float(c[1]), float(c[2]), 1.0 + dot))


def q_from_matrix(m: np.ndarray) -> Quaternion:
    """Quaternion of a 3x3 rotation matrix (columns are the rotated basis vectors)."""
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = math.sqrt(tr + 1.0) * 2
        q = ((m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = (s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s)
    elif m[1, 1] > m[2, 2]:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = ((m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s)
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = ((m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s)
    return q_normalize(tuple(float(c) for c in q))  # type: ignore[arg-type]


def frame_matrix(primary: np.ndarray, secondary: np.ndarray, order: str) -> np.ndarray:
    """Orthonormal basis from a primary axis and a second, roughly perpendicular one.

    ``order`` names which basis axes they are, e.g. ``"xy"``: ``primary`` is X exactly,
    ``secondary`` is made perpendicular and becomes Y, the third completes a right-handed
    frame. Returns a 3x3 matrix whose columns are X, Y, Z.
    """
    p = normalize(primary)
    s = normalize(secondary - np.dot(secondary, p) * p)
    axes: dict[str, np.ndarray] = {order[0]: p, order[1]: s}
    missing = ({"x", "y", "z"} - set(order)).pop()
    if missing == "z":
        axes["z"] = np.cross(axes["x"], axes["y"])
    elif missing == "x":
        axes["x"] = np.cross(axes["y"], axes["z"])
    else:
        axes["y"] = np.cross(axes["z"], axes["x"])
    return np.stack([axes["x"], axes["y"], axes["z"]], axis=1)


def q_from_frames(rest_dir: np.ndarray, rest_ref: np.ndarray,
                  dir_: np.ndarray, ref: np.ndarray) -> Quaternion:
    """Swing plus twist: the rotation taking ``rest_dir`` onto ``dir_`` exactly and the
    reference axis ``rest_ref`` (perpendicular to it) as close as possible onto ``ref``."""
    rest = frame_matrix(rest_dir, rest_ref, "xy")
    now = frame_matrix(dir_, ref, "xy")
    return q_from_matrix(now @ rest.T)


def swing_twist(q: Quaternion, axis: np.ndarray) -> tuple[Quaternion, Quaternion]:
    """Split ``q`` into ``swing * twist`` where ``twist`` turns about the unit ``axis``."""
    a = normalize(axis)
    proj = float(np.dot(np.array(q[:3]), a))
    twist = q_normalize((float(a[0] * proj), float(a[1] * proj), float(a[2] * proj), q[3]))
    if abs(proj) < _EPS and abs(q[3]) < _EPS:
        twist = IDENTITY
    return q_mul(q, q_inv(twist)), twist
