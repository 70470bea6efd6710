"""Simple solid shapes for the default avatar, each rigidly bound to one bone.

Pure geometry on numpy arrays: a ``MeshPart`` holds positions, normals, colours, the joint
each vertex follows, and triangles (counter-clockwise seen from outside).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class MeshPart:
    """Vertices of one shape (N×3 float32 positions and normals, N×3 linear colours,
    N joint indices) and its M×3 triangles."""

    positions: np.ndarray
    normals: np.ndarray
    colors: np.ndarray
    joints: np.ndarray
    triangles: np.ndarray


def srgb(hex_rgb: int) -> np.ndarray:
    """A colour written as 0xRRGGBB (sRGB) in glTF's linear space."""
    rgb = np.array([(hex_rgb >> 16) & 255, (hex_rgb >> 8) & 255, hex_rgb & 255]) / 255.0
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def rotation_from_y(direction: Vec3) -> np.ndarray:
    """3×3 rotation taking +Y onto ``direction`` (any length but zero)."""
    d = np.asarray(direction, dtype=float)
    d = d / np.linalg.norm(d)
    y = np.array([0.0, 1.0, 0.0])
    axis = np.cross(y, d)
    s, c = np.linalg.norm(axis), float(y @ d)
    if s < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


def _grid_triangles(rings: int, segments: int, offset: int = 0) -> np.ndarray:
    """Triangles of a (rings+1)×segments vertex grid wrapped around in the segment axis."""
    tris = []
    for r in range(rings):
        for s in range(segments):
            a = r * segments + s
            b = r * segments + (s + 1) % segments
            c, d = a + segments, b + segments
            tris += [(a, c, b), (b, c, d)]
    return np.asarray(tris, dtype=np.uint32) + offset


def ellipsoid(centre: Vec3, radii: Vec3, color: int, joint: int, *,
              axis: Vec3 = (0.0, 1.0, 0.0), rings: int = 12, segments: int = 20) -> MeshPart:
    """An ellipsoid with ``radii`` (x, along-axis, z) whose second radius lies along ``axis``."""
    theta = np.linspace(0.0, np.pi, rings + 1)[:, None]          # from +axis end to -axis end
    phi = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)[None, :]
    unit = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta) * np.ones_like(phi),
                     np.sin(theta) * np.cos(phi)], axis=-1).reshape(-1, 3)
    r = np.asarray(radii, dtype=float)
    rot = rotation_from_y(axis)
    positions = (unit * r) @ rot.T + np.asarray(centre)
    normals = unit / r
    normals = (normals / np.linalg.norm(normals, axis=1, keepdims=True)) @ rot.T
    return _part(positions, normals, color, joint, _grid_triangles(rings, segments))


def frustum(top: Vec3, bottom: Vec3, top_radius: float, bottom_radius: float, color: int,
            joint: int, *, segments: int = 28) -> MeshPart:
    """An open truncated cone (a skirt, a sleeve) from ``top`` to ``bottom``."""
    t, b = np.asarray(top, dtype=float), np.asarray(bottom, dtype=float)
    rot = rotation_from_y(tuple(t - b))  # type: ignore[arg-type]
    phi = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([np.sin(phi), np.zeros_like(phi), np.cos(phi)], axis=-1)
    positions = np.concatenate([t + (ring * top_radius) @ rot.T,
                                b + (ring * bottom_radius) @ rot.T])
    slope = (bottom_radius - top_radius) / np.linalg.norm(t - b)
    n = ring + np.array([0.0, slope, 0.0])
    n = (n / np.linalg.norm(n, axis=1, keepdims=True)) @ rot.T
    return _part(positions, np.concatenate([n, n]), color, joint, _grid_triangles(1, segments))


def disc_on_sphere(outline: np.ndarray, sphere_centre: Vec3, radius_m: float, lift_m: float,
                   color: int, joint: int) -> MeshPart:
    """A flat-shaded patch lying on a sphere's front (+Z), bounded by ``outline`` (K×2 x, y
    relative to the sphere centre); a fan from the outline's mean."""
    positions = project_on_sphere(outline, sphere_centre, radius_m, lift_m)
    k = len(outline)
    fan = [(k, i, (i + 1) % k) for i in range(k)]
    centre = project_on_sphere(outline.mean(axis=0, keepdims=True), sphere_centre, radius_m,
                               lift_m)
    positions = np.concatenate([positions, centre])
    normals = positions - np.asarray(sphere_centre)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return _part(positions, normals, color, joint, np.asarray(fan, dtype=np.uint32))


def project_on_sphere(xy: np.ndarray, sphere_centre: Vec3, radius_m: float,
                      lift_m: float) -> np.ndarray:
    """Points (x, y) relative to a sphere's centre placed on its front surface, ``lift_m``
    out."""
    x, y = xy[:, 0], xy[:, 1]
    z = np.sqrt(np.maximum(radius_m ** 2 - x ** 2 - y ** 2, 0.0)) + lift_m
    return np.stack([x, y, z], axis=1) + np.asarray(sphere_centre)


def ellipse(centre_xy: tuple[float, float], width_m: float, height_m: float,
            points: int = 24) -> np.ndarray:
    """K×2 outline of an ellipse, counter-clockwise seen from +Z."""
    a = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
    return np.stack([centre_xy[0] + width_m / 2 * np.cos(a),
                     centre_xy[1] + height_m / 2 * np.sin(a)], axis=1)


def _part(positions: np.ndarray, normals: np.ndarray, color: int, joint: int,
          triangles: np.ndarray) -> MeshPart:
    n = len(positions)
    return MeshPart(positions.astype(np.float32), normals.astype(np.float32),
                    np.tile(srgb(color), (n, 1)).astype(np.float32),
                    np.full(n, joint, dtype=np.uint16), triangles.astype(np.uint32))


def merge(parts: list[MeshPart]) -> MeshPart:
    """One vertex list and one triangle list from several parts."""
    offsets = np.cumsum([0] + [len(p.positions) for p in parts[:-1]])
    return MeshPart(
        np.concatenate([p.positions for p in parts]),
        np.concatenate([p.normals for p in parts]),
        np.concatenate([p.colors for p in parts]),
        np.concatenate([p.joints for p in parts]),
        np.concatenate([p.triangles + o for p, o in zip(parts, offsets, strict=True)]),
    )
