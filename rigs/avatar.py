"""The default avatar: a stylised idol written as a VRM 1.0 file from code, and a VRM checker.

``build_default_avatar`` writes a binary glTF with the ``VRMC_vrm`` extension: a T-pose
skeleton of humanoid bones (``rigs.skeleton``), a body whose parts each follow one bone
(skinned, weight 1), a face whose expressions are morph targets (``rigs.face``), and a meta
block with its licence. ``read_vrm`` opens any ``.vrm`` (0.x or 1.0) and says what it holds,
or raises ``AvatarError`` naming what is wrong.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pygltflib as gl

from rigs.avatar_face import EXPRESSION_SHAPES, NEUTRAL, face_mesh, morph_targets
from rigs.mesh import MeshPart, ellipsoid, frustum, merge
from rigs.skeleton import REQUIRED_BONES, SKELETON, local_offset

AVATAR_NAME = "Lumi (livesinger default avatar)"
AVATAR_VERSION = "1.0"
LICENCE_URL = "https://vrm.dev/licenses/1.0/"

HAIR, DRESS, SKIRT, SKIN, BOOTS, SHOES = 0x5EC8D8, 0xE8508A, 0xF06AA0, 0xFFDCCB, 0xF4F4FF, 0x2D2D48


class AvatarError(ValueError):
    """A file is not a usable VRM avatar; the message names the file and what is missing."""


@dataclass(frozen=True)
class VrmSummary:
    """What a VRM file holds: its name, VRM version, humanoid bones and expressions."""

    name: str
    spec_version: str
    bones: dict[str, int]
    expressions: tuple[str, ...]


# ---- geometry -----------------------------------------------------------------------------

def _body_parts(joint: dict[str, int]) -> list[MeshPart]:
    """Every body part, each following one bone (the right side mirrors the left)."""
    parts = [
        ellipsoid((0.0, 0.97, 0.0), (0.14, 0.09, 0.10), DRESS, joint["hips"]),
        frustum((0.0, 1.02, 0.0), (0.0, 0.66, 0.0), 0.12, 0.27, SKIRT, joint["hips"]),
        ellipsoid((0.0, 1.12, 0.0), (0.11, 0.10, 0.08), DRESS, joint["spine"]),
        ellipsoid((0.0, 1.25, 0.0), (0.13, 0.10, 0.09), DRESS, joint["chest"]),
        ellipsoid((0.0, 1.34, 0.0), (0.15, 0.06, 0.085), DRESS, joint["upperChest"]),
        ellipsoid((0.0, 1.45, 0.0), (0.035, 0.06, 0.035), SKIN, joint["neck"]),
        # hair: a cap over the back of the head, a fringe, and two tails
        ellipsoid((0.0, 1.605, -0.025), (0.118, 0.122, 0.115), HAIR, joint["head"]),
        ellipsoid((0.0, 1.665, 0.04), (0.10, 0.035, 0.07), HAIR, joint["head"]),
    ]
    for side, prefix in ((1.0, "left"), (-1.0, "right")):
        def j(bone: str, prefix: str = prefix) -> int:
            return joint[prefix + bone]
        x_axis = (side, 0.0, 0.0)
        parts += [
            ellipsoid((side * 0.14, 1.52, -0.05), (0.045, 0.17, 0.045), HAIR, joint["head"],
                      axis=(side * 0.25, 1.0, -0.15)),
            ellipsoid((side * 0.095, 1.37, 0.0), (0.045, 0.075, 0.045), DRESS, j("Shoulder"),
                      axis=x_axis),
            ellipsoid((side * 0.29, 1.37, 0.0), (0.04, 0.14, 0.04), SKIN, j("UpperArm"),
                      axis=x_axis),
            ellipsoid((side * 0.535, 1.37, 0.0), (0.034, 0.125, 0.034), SKIN, j("LowerArm"),
                      axis=x_axis),
            ellipsoid((side * 0.70, 1.37, 0.0), (0.02, 0.06, 0.04), SKIN, j("Hand"),
                      axis=x_axis),
            ellipsoid((side * 0.09, 0.70, 0.0), (0.065, 0.21, 0.065), SKIN, j("UpperLeg")),
            ellipsoid((side * 0.09, 0.30, 0.0), (0.05, 0.21, 0.05), BOOTS, j("LowerLeg")),
            ellipsoid((side * 0.09, 0.05, 0.03), (0.045, 0.045, 0.10), SHOES, j("Foot")),
            ellipsoid((side * 0.09, 0.035, 0.12), (0.04, 0.03, 0.035), SHOES, j("Toes")),
        ]
    return parts


# ---- glTF assembly ------------------------------------------------------------------------

class _Blob:
    """The binary chunk being written, with one buffer view and accessor per array."""

    def __init__(self, gltf: gl.GLTF2) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def add(self, array: np.ndarray, kind: str, target: int | None = None,
            minmax: bool = False) -> int:
        component = {np.dtype(np.float32): gl.FLOAT, np.dtype(np.uint32): gl.UNSIGNED_INT,
                     np.dtype(np.uint16): gl.UNSIGNED_SHORT}[array.dtype]
        raw = np.ascontiguousarray(array).tobytes()
        offset = len(self.data)
        self.data += raw + b"\0" * (-len(raw) % 4)
        self.gltf.bufferViews.append(gl.BufferView(buffer=0, byteOffset=offset,
                                                   byteLength=len(raw), target=target))
        flat = array.reshape(len(array), -1)
        accessor = gl.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component,
                               count=len(array), type=kind)
        if minmax:
            accessor.min = [float(v) for v in flat.min(axis=0)]
            accessor.max = [float(v) for v in flat.max(axis=0)]
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1


def _primitive(blob: _Blob, part: MeshPart, targets: dict[str, np.ndarray] | None = None
               ) -> gl.Primitive:
    n = len(part.positions)
    joints = np.zeros((n, 4), dtype=np.uint16)
    joints[:, 0] = part.joints
    weights = np.zeros((n, 4), dtype=np.float32)
    weights[:, 0] = 1.0
    attributes = gl.Attributes(
        POSITION=blob.add(part.positions, gl.VEC3, gl.ARRAY_BUFFER, minmax=True),
        NORMAL=blob.add(part.normals, gl.VEC3, gl.ARRAY_BUFFER),
        COLOR_0=blob.add(part.colors, gl.VEC3, gl.ARRAY_BUFFER),
        JOINTS_0=blob.add(joints, gl.VEC4, gl.ARRAY_BUFFER),
        WEIGHTS_0=blob.add(weights, gl.VEC4, gl.ARRAY_BUFFER),
    )
    primitive = gl.Primitive(attributes=attributes, material=0, mode=gl.TRIANGLES,
                             indices=blob.add(part.triangles.reshape(-1), gl.SCALAR,
                                              gl.ELEMENT_ARRAY_BUFFER))
    if targets:
        primitive.targets = [{"POSITION": blob.add(d.astype(np.float32), gl.VEC3,
                                                   gl.ARRAY_BUFFER, minmax=True)}
                             for d in targets.values()]
    return primitive


def _inverse_binds() -> np.ndarray:
    """Column-major inverse bind matrices: the rest pose has translations only."""
    mats = np.tile(np.eye(4, dtype=np.float32), (len(SKELETON), 1, 1))
    for i, bone in enumerate(SKELETON):
        mats[i, :3, 3] = [-c for c in bone.rest_position_m]
    return mats.transpose(0, 2, 1).reshape(len(SKELETON), 16)


def _meta() -> dict[str, Any]:
    return {
        "name": AVATAR_NAME, "version": AVATAR_VERSION, "authors": ["livesinger"],
        "copyrightInformation": "Generated from code by livesinger (rigs/avatar.py)",
        "licenseUrl": LICENCE_URL, "avatarPermission": "everyone",
        "allowExcessivelyViolentUsage": False, "allowExcessivelySexualUsage": False,
        "commercialUsage": "corporation", "allowPoliticalOrReligiousUsage": False,
        "allowAntisocialOrHateUsage": False, "creditNotation": "unnecessary",
        "allowRedistribution": True, "modification": "allowModificationRedistribution",
        "otherLicenseUrl": "https://opensource.org/license/mit",
    }


def build_default_avatar(path: Path) -> Path:
    """Write the default avatar as a VRM 1.0 file at ``path`` and return the path."""
    gltf = gl.GLTF2(asset=gl.Asset(version="2.0", generator="livesinger rigs.avatar"))
    gltf.extensionsUsed = ["VRMC_vrm"]
    gltf.materials = [gl.Material(
        name="idol", doubleSided=True,
        pbrMetallicRoughness=gl.PbrMetallicRoughness(baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                                                     metallicFactor=0.0, roughnessFactor=0.75))]
    blob = _Blob(gltf)

    first_bone = 1
    node_of = {b.name: first_bone + i for i, b in enumerate(SKELETON)}
    joint_of = {b.name: i for i, b in enumerate(SKELETON)}
    gltf.nodes.append(gl.Node(name="Root", children=[node_of["hips"]]))
    for bone in SKELETON:
        kids = [node_of[b.name] for b in SKELETON if b.parent == bone.name]
        gltf.nodes.append(gl.Node(name=bone.name, translation=list(local_offset(bone)),
                                  children=kids))
    gltf.skins.append(gl.Skin(name="humanoid", joints=[node_of[b.name] for b in SKELETON],
                              skeleton=node_of["hips"],
                              inverseBindMatrices=blob.add(_inverse_binds(), gl.MAT4)))

    body = merge(_body_parts(joint_of))
    gltf.meshes.append(gl.Mesh(name="Body", primitives=[_primitive(blob, body)]))
    head = joint_of["head"]
    targets = morph_targets(head)
    gltf.meshes.append(gl.Mesh(name="Face",
                               primitives=[_primitive(blob, face_mesh(NEUTRAL, head), targets)],
                               weights=[0.0] * len(targets),
                               extras={"targetNames": list(targets)}))
    body_node, face_node = len(gltf.nodes), len(gltf.nodes) + 1
    gltf.nodes.append(gl.Node(name="Body", mesh=0, skin=0))
    gltf.nodes.append(gl.Node(name="Face", mesh=1, skin=0))
    gltf.scenes = [gl.Scene(name="Scene", nodes=[0, body_node, face_node])]
    gltf.scene = 0

    gltf.extensions = {"VRMC_vrm": {
        "specVersion": "1.0",
        "meta": _meta(),
        "humanoid": {"humanBones": {b.name: {"node": node_of[b.name]} for b in SKELETON}},
        "expressions": {"preset": {
            name: {"morphTargetBinds": [{"node": face_node, "index": i, "weight": 1.0}],
                   "isBinary": False, "overrideBlink": "none", "overrideLookAt": "none",
                   "overrideMouth": "none"}
            for i, name in enumerate(EXPRESSION_SHAPES)}},
    }}
    gltf.buffers = [gl.Buffer(byteLength=len(blob.data))]
    gltf.set_binary_blob(bytes(blob.data))
    path.parent.mkdir(parents=True, exist_ok=True)
    gltf.save_binary(str(path))
    return path


# ---- reading ------------------------------------------------------------------------------

def read_vrm(path: Path) -> VrmSummary:
    """Open a ``.vrm`` (VRM 0.x or 1.0) and summarise it; ``AvatarError`` if it is not usable."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise AvatarError(f"{path}: cannot read the avatar ({err.strerror})") from err
    if len(data) < 20 or data[:4] != b"glTF":
        raise AvatarError(f"{path}: not a VRM avatar (a VRM is a binary glTF starting 'glTF')")
    _magic, version, _length = struct.unpack_from("<4sII", data)
    chunk_length, chunk_type = struct.unpack_from("<II", data, 12)
    if version != 2 or chunk_type != 0x4E4F534A or 20 + chunk_length > len(data):
        raise AvatarError(f"{path}: broken binary glTF (version {version}, first chunk "
                          f"{chunk_type:#x}, {len(data)} bytes)")
    try:
        doc = json.loads(data[20:20 + chunk_length])
    except RecursionError:
        raise AvatarError(f"{path}: the glTF JSON chunk is nested too deeply") from None
    except ValueError as err:
        raise AvatarError(f"{path}: the glTF JSON chunk does not parse: {err}") from err
    if not isinstance(doc, dict):
        raise AvatarError(f"{path}: the glTF JSON chunk is a {type(doc).__name__}, not an "
                          "object")
    extensions = _object(doc.get("extensions"), path, "extensions")
    nodes_list = doc.get("nodes")
    nodes = len(nodes_list) if isinstance(nodes_list, list) else 0
    if "VRMC_vrm" in extensions:
        vrm = _object(extensions["VRMC_vrm"], path, "VRMC_vrm")
        human = _object(_object(vrm.get("humanoid"), path, "VRMC_vrm.humanoid").get(
            "humanBones"), path, "VRMC_vrm.humanoid.humanBones")
        bones = {str(k): _node(v) for k, v in human.items()}
        exprs = _object(vrm.get("expressions"), path, "VRMC_vrm.expressions")
        names = (*_object(exprs.get("preset"), path, "VRMC_vrm.expressions.preset"),
                 *_object(exprs.get("custom"), path, "VRMC_vrm.expressions.custom"))
        summary = VrmSummary(str(_object(vrm.get("meta"), path, "VRMC_vrm.meta").get("name", "")),
                             str(vrm.get("specVersion", "1.0")), bones, tuple(names))
    elif "VRM" in extensions:
        vrm = _object(extensions["VRM"], path, "VRM")
        human_list = _array(_object(vrm.get("humanoid"), path, "VRM.humanoid").get(
            "humanBones"), path, "VRM.humanoid.humanBones")
        bones = {str(b.get("bone", "?")): _node(b) for b in human_list if isinstance(b, dict)}
        groups = _array(_object(vrm.get("blendShapeMaster"), path, "VRM.blendShapeMaster").get(
            "blendShapeGroups"), path, "VRM.blendShapeMaster.blendShapeGroups")
        summary = VrmSummary(str(_object(vrm.get("meta"), path, "VRM.meta").get("title", "")),
                             "0.x", bones,
                             tuple(str(g.get("presetName") or g.get("name", ""))
                                   for g in groups if isinstance(g, dict)))
    else:
        raise AvatarError(f"{path}: a glTF file without VRM data (no VRMC_vrm or VRM "
                          "extension): export it as VRM")
    missing = [b for b in REQUIRED_BONES if b not in summary.bones]
    if missing:
        raise AvatarError(f"{path}: the humanoid lacks required bones: {', '.join(missing)}")
    bad = [b for b, n in summary.bones.items() if not 0 <= n < nodes]
    if bad:
        raise AvatarError(f"{path}: humanoid bones point at no node: "
                          f"{', '.join(b if b.isprintable() else repr(b) for b in bad)}")
    return summary


def _object(value: object, path: Path, what: str) -> dict[str, Any]:
    """A JSON object of the glTF (absent: empty); ``AvatarError`` for any other value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AvatarError(f"{path}: {what} must be a JSON object, got {type(value).__name__}")
    return value


def _array(value: object, path: Path, what: str) -> list[Any]:
    """A JSON array of the glTF (absent: empty); ``AvatarError`` for any other value."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise AvatarError(f"{path}: {what} must be a JSON array, got {type(value).__name__}")
    return value


def _node(bone: object) -> int:
    """The node index of a humanoid bone entry ``{"node": N}``; -1 when it names none."""
    node = bone.get("node") if isinstance(bone, dict) else None
    return node if isinstance(node, int) and not isinstance(node, bool) else -1
