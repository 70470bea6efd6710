"""VRM/glTF avatars (``rigs.avatar.read_vrm``): any file ends in a ``VrmSummary`` or a
one-line ``AvatarError``: broken headers, chunk lengths, JSON of any shape."""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rigs.avatar import AvatarError, VrmSummary, build_default_avatar, read_vrm
from tests.fuzz.strategies import NASTY_TEXT, mutated

pytestmark = pytest.mark.timeout(60)
_serial = itertools.count()

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | NASTY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY_TEXT, inner, max_size=3),
    max_leaves=10)
BONES = st.sampled_from(["hips", "spine", "head", "leftUpperArm", "x"])
VRM1 = st.fixed_dictionaries({"humanoid": st.one_of(VALUES, st.fixed_dictionaries(
    {"humanBones": st.one_of(VALUES, st.dictionaries(BONES, st.one_of(
        VALUES, st.fixed_dictionaries({"node": VALUES}))))}))},
    optional={"meta": VALUES, "expressions": VALUES, "specVersion": VALUES})
VRM0 = st.fixed_dictionaries({"humanoid": st.one_of(VALUES, st.fixed_dictionaries(
    {"humanBones": st.one_of(VALUES, st.lists(st.one_of(VALUES, st.fixed_dictionaries(
        {"bone": BONES, "node": VALUES}))))}))},
    optional={"meta": VALUES, "blendShapeMaster": VALUES})
DOCS = st.one_of(
    VALUES,
    st.fixed_dictionaries({"extensions": st.one_of(
        VALUES, st.fixed_dictionaries({"VRMC_vrm": st.one_of(VRM1, VALUES)}),
        st.fixed_dictionaries({"VRM": st.one_of(VRM0, VALUES)}))},
        optional={"nodes": st.one_of(VALUES, st.lists(st.just({}), max_size=60))}))


def glb(doc: object) -> bytes:
    body = json.dumps(doc).encode()
    body += b" " * (-len(body) % 4)
    return struct.pack("<4sII", b"glTF", 2, 20 + len(body)) + struct.pack(
        "<II", len(body), 0x4E4F534A) + body


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vrm")


@pytest.fixture(scope="module")
def real_head(folder: Path) -> bytes:
    """The default avatar's header and JSON chunk (its binary chunk is not read)."""
    data = build_default_avatar(folder / "default.vrm").read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    return data[:20 + length]


def check(folder: Path, data: bytes) -> None:
    path = folder / f"a{next(_serial)}.vrm"
    path.write_bytes(data)
    try:
        summary = read_vrm(path)
    except AvatarError as err:
        assert str(err) and "\n" not in str(err), repr(str(err))
    else:
        assert isinstance(summary, VrmSummary)
    finally:
        path.unlink()


@given(DOCS)
@example([])  # found: a JSON chunk that is not an object raised AttributeError
@example({"extensions": {"VRMC_vrm": {"humanoid": {"humanBones": {"hips": 3}}}}})
@example({"extensions": {"VRM": {"humanoid": {"humanBones": [1]}}}})
def test_any_json_chunk(folder: Path, doc: object) -> None:
    check(folder, glb(doc))


@given(st.data())
def test_any_mutation_of_the_default_avatar(folder: Path, real_head: bytes,
                                            data: st.DataObject) -> None:
    check(folder, data.draw(mutated(st.just(real_head))))


@given(st.binary(max_size=64))
@example(b"\2\0\0\0\0\0\0\0\x08\x27\0\0JSON" + b"[" * 9990 + b"  ")  # RecursionError
def test_any_short_file(folder: Path, data: bytes) -> None:
    check(folder, b"glTF" + data)
