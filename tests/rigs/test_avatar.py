"""The default avatar, read back from the file it was written to: bones, skin, expressions."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygltflib as gl
import pytest

from rigs.avatar import AvatarError, build_default_avatar, read_vrm
from rigs.avatar_face import EYE_H_M, EYE_X_M, MOUTH
from rigs.mesh import srgb
from rigs.skeleton import REQUIRED_BONES, SKELETON
from stage.serve import ServeError, ServeOptions, check_options


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_default_avatar(tmp_path_factory.mktemp("avatar") / "idol.vrm")


def accessor(doc: gl.GLTF2, index: int) -> np.ndarray:
    """An accessor's data as a numpy array (rows = elements)."""
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    dtype = {gl.FLOAT: np.float32, gl.UNSIGNED_SHORT: np.uint16, gl.UNSIGNED_INT: np.uint32}
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    blob = doc.binary_blob()
    raw = np.frombuffer(blob, dtype=dtype[acc.componentType], count=acc.count * width,
                        offset=view.byteOffset + (acc.byteOffset or 0))
    return raw.reshape(acc.count, width)


def rot_z(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return m


def skinned(doc: gl.GLTF2, mesh: int, rotations: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Vertices of a mesh posed by local bone rotations, with the file's own skin data."""
    node_index = {n.name: i for i, n in enumerate(doc.nodes)}
    parent = {c: i for i, n in enumerate(doc.nodes) for c in (n.children or [])}
    glob: dict[int, np.ndarray] = {}

    def world(i: int) -> np.ndarray:
        if i not in glob:
            local = np.eye(4)
            local[:3, 3] = doc.nodes[i].translation or [0, 0, 0]
            local = local @ rotations.get(doc.nodes[i].name, np.eye(4))
            glob[i] = (world(parent[i]) if i in parent else np.eye(4)) @ local
        return glob[i]

    skin = doc.skins[0]
    inverse_binds = accessor(doc, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    joint_mats = np.stack([world(j) @ ib for j, ib in zip(skin.joints, inverse_binds,
                                                           strict=True)])
    prim = doc.meshes[mesh].primitives[0]
    pos = accessor(doc, prim.attributes.POSITION)
    joints = accessor(doc, prim.attributes.JOINTS_0)[:, 0]
    colors = accessor(doc, prim.attributes.COLOR_0)
    homo = np.concatenate([pos, np.ones((len(pos), 1))], axis=1)
    posed = np.einsum("nij,nj->ni", joint_mats[joints], homo)[:, :3]
    names = np.array([doc.nodes[skin.joints[j]].name for j in joints])
    assert node_index  # the nodes are named after the bones
    return posed, names, colors


def test_the_file_is_vrm_1_with_every_required_bone_and_expression(avatar: Path) -> None:
    summary = read_vrm(avatar)
    assert summary.spec_version == "1.0"
    assert set(REQUIRED_BONES) <= set(summary.bones)
    for name in ("aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft", "blinkRight", "happy"):
        assert name in summary.expressions
    doc = gl.GLTF2().load_binary(str(avatar))
    assert "VRMC_vrm" in doc.extensionsUsed
    meta = doc.extensions["VRMC_vrm"]["meta"]
    assert meta["licenseUrl"].startswith("https://") and meta["authors"]
    for bone, node in summary.bones.items():
        assert doc.nodes[node].name == bone
        assert not doc.nodes[node].rotation  # VRM 1.0 rest pose: no local rotations


def test_every_body_part_follows_its_bone(avatar: Path) -> None:
    doc = gl.GLTF2().load_binary(str(avatar))
    rest, names, _ = skinned(doc, 0, {})
    position = {b.name: np.array(b.rest_position_m) for b in SKELETON}
    for bone in REQUIRED_BONES:
        own = rest[names == bone]
        assert len(own) > 20, bone
        kids = [b for b in SKELETON if b.parent == bone and b.name.removeprefix("left")
                .removeprefix("right") not in ("UpperLeg", "Shoulder")]
        tip = position[kids[0].name] if kids else position[bone] + [0, 0.05, 0]
        centre = own.mean(axis=0)
        # the part's centre lies on the bone, between its joint and the next one
        seg = tip - position[bone]
        along = np.clip((centre - position[bone]) @ seg / (seg @ seg), 0, 1)
        assert np.linalg.norm(position[bone] + along * seg - centre) < 0.06, bone

    # lower the left arm by 90 degrees at the shoulder: the hand follows it down
    posed, names, _ = skinned(doc, 0, {"leftUpperArm": rot_z(-90)})
    hand = posed[names == "leftHand"].mean(axis=0)
    upper = np.array(position["leftUpperArm"])
    reach = position["leftHand"][0] - upper[0]
    assert abs(hand[0] - upper[0]) < 0.03
    assert upper[1] - hand[1] > reach  # below the shoulder by more than the arm's length
    right = posed[names == "rightHand"].mean(axis=0)
    assert right[0] < -0.6  # the other arm stays out


def test_expressions_open_the_mouth_and_close_the_eyes(avatar: Path) -> None:
    doc = gl.GLTF2().load_binary(str(avatar))
    face = doc.meshes[1]
    names = face.extras["targetNames"]
    prim = face.primitives[0]
    rest, _, colors = skinned(doc, 1, {})
    mouth = np.all(np.isclose(colors, srgb(MOUTH), atol=1e-4), axis=1)

    def shape(name: str) -> np.ndarray:
        return rest + accessor(doc, prim.targets[names.index(name)]["POSITION"])

    def opening(verts: np.ndarray) -> float:
        return float(np.ptp(verts[mouth][:, 1]))

    assert opening(rest) < 0.006
    assert opening(shape("aa")) > 0.035
    assert opening(shape("oh")) > opening(shape("ih"))
    assert np.ptp(shape("ee")[mouth][:, 0]) > np.ptp(shape("ou")[mouth][:, 0]) * 2
    # lids come down over the eyes: by about an eye's height, and only on their side
    moved_left = np.linalg.norm(shape("blinkLeft") - rest, axis=1)
    lowered = shape("blinkLeft")[moved_left > 1e-4]
    assert len(lowered) and np.all(lowered[:, 0] > EYE_X_M / 3)
    assert np.max(moved_left) > EYE_H_M * 0.8
    both = np.linalg.norm(shape("blink") - rest, axis=1) > 1e-4
    assert both.sum() == 2 * (moved_left > 1e-4).sum()
    # every expression binds a morph target of the face node
    vrm = doc.extensions["VRMC_vrm"]["expressions"]["preset"]
    for name, expression in vrm.items():
        bind = expression["morphTargetBinds"][0]
        assert doc.nodes[bind["node"]].mesh == 1 and names[bind["index"]] == name


def _rewrite_json(src: Path, dst: Path, edit) -> Path:  # noqa: ANN001
    data = src.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + length])
    edit(doc)
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    rest = data[20 + length:]
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + rest
    dst.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body)
    return dst


def test_bad_avatars_get_errors_that_say_what_is_wrong(avatar: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.vrm"
    text.write_text("not a model")
    with pytest.raises(AvatarError, match="not a VRM avatar"):
        read_vrm(text)
    with pytest.raises(AvatarError, match="cannot read"):
        read_vrm(tmp_path / "missing.vrm")
    plain = _rewrite_json(avatar, tmp_path / "plain.glb",
                          lambda d: (d.pop("extensions"), d.pop("extensionsUsed")))
    with pytest.raises(AvatarError, match="without VRM data"):
        read_vrm(plain)
    no_head = _rewrite_json(
        avatar, tmp_path / "nohead.vrm",
        lambda d: d["extensions"]["VRMC_vrm"]["humanoid"]["humanBones"].pop("head"))
    with pytest.raises(AvatarError, match="lacks required bones: head"):
        read_vrm(no_head)
    truncated = tmp_path / "cut.vrm"
    truncated.write_bytes(avatar.read_bytes()[:40])
    with pytest.raises(AvatarError, match="broken binary glTF"):
        read_vrm(truncated)
    # the engine refuses such a file before it starts, with the same words
    with pytest.raises(ServeError, match="lacks required bones: head"):
        check_options(ServeOptions(avatar=no_head))


def test_cli_builds_and_checks_avatars(tmp_path: Path) -> None:
    out = tmp_path / "default.vrm"
    cli = [sys.executable, "-m", "stage.cli", "avatar"]
    built = subprocess.run([*cli, "build", "-o", str(out)], capture_output=True, text=True,
                           check=True)
    assert "VRM 1.0" in built.stdout and out.stat().st_size > 10_000
    checked = subprocess.run([*cli, "check", str(out), "--json"], capture_output=True,
                             text=True, check=True)
    assert set(REQUIRED_BONES) <= set(json.loads(checked.stdout)["bones"])
    bad = tmp_path / "bad.vrm"
    bad.write_text("{}")
    refused = subprocess.run([*cli, "check", str(bad)], capture_output=True, text=True)
    assert refused.returncode == 2
    assert "not a VRM avatar" in refused.stderr and "Traceback" not in refused.stderr
