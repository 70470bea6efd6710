"""Hypothesis strategies shared by the fuzz tests: well-formed inputs and their mutations.

Random bytes alone rarely get past a parser's first check; a valid input with a few bytes
changed, cut or repeated reaches the deep paths, so each surface is fuzzed with both.
"""

from __future__ import annotations

import struct

from hypothesis import strategies as st


def osc_string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return raw + b"\0" * (-len(raw) % 4)


NASTY_TEXT = st.text(st.sampled_from("a1/._-\n\r\t\0\x1b\u2028\u00e9\u4e2d#+ {}[]*?")
                     | st.characters(codec="utf-8"), max_size=40)
"""Text that leans on what breaks messages and logs: control characters, separators,
wildcards, non-ASCII."""

ADDRESSES = st.sampled_from([
    "/livesinger/note/on", "/livesinger/note/off", "/livesinger/song/load", "/livesinger/go",
    "/livesinger/expr/vibrato_depth", "/livesinger/singer/alto/note/on", "/cue/1/start",
    "/livesinger/auth", "/connect", "/go", "/livesinger/tempo", "/livesinger/lyric",
    "/VMC/Ext/Bone/Pos", "/VMC/Ext/Root/Pos", "/VMC/Ext/Blend/Val", "/VMC/Ext/Blend/Apply",
    "/VMC/Ext/T", "/VMC/Ext/OK",
]) | NASTY_TEXT.map(lambda s: "/" + s.replace("\0", ""))  # NUL ends an OSC string

ARGUMENT = st.one_of(
    st.integers(-2**31, 2**31 - 1).map(lambda v: ("i", struct.pack(">i", v))),
    st.floats(width=32, allow_nan=True, allow_infinity=True).map(
        lambda v: ("f", struct.pack(">f", v))),
    st.floats(allow_nan=True).map(lambda v: ("d", struct.pack(">d", v))),
    st.integers(-2**63, 2**63 - 1).map(lambda v: ("h", struct.pack(">q", v))),
    NASTY_TEXT.map(lambda s: ("s", osc_string(s.replace("\0", "")))),
    st.binary(max_size=20).map(
        lambda b: ("b", struct.pack(">i", len(b)) + b + b"\0" * (-len(b) % 4))),
    st.sampled_from([("T", b""), ("F", b""), ("N", b"")]),
)


@st.composite
def osc_messages(draw: st.DrawFn) -> bytes:
    """A well-formed OSC message with any address and arguments of every type."""
    address = draw(ADDRESSES)
    args = draw(st.lists(ARGUMENT, max_size=9))
    return (osc_string(address) + osc_string("," + "".join(t for t, _ in args))
            + b"".join(v for _, v in args))


def osc_bundle(timetag: int, elements: list[bytes]) -> bytes:
    return (b"#bundle\0" + struct.pack(">Q", timetag)
            + b"".join(struct.pack(">i", len(e)) + e for e in elements))


TIMETAGS = st.one_of(st.just(1), st.integers(0, 2**64 - 1),
                     st.integers(0xE8000000 << 32, 0xF0000000 << 32))  # ~2023..2027

osc_packets = st.recursive(
    osc_messages(),
    lambda inner: st.builds(osc_bundle, TIMETAGS, st.lists(inner, max_size=4)),
    max_leaves=12)
"""Messages and bundles, nested (sometimes deeper than the server takes)."""


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` with a few bytes flipped, cut, inserted or repeated."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[at:]
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 16))] * draw(st.integers(1, 4))
    return bytes(data)


def text_mutations(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Text inputs: ``base``, ``base`` with bytes mutated (decoded leniently), or any text."""
    return st.one_of(
        base,
        mutated(base.map(lambda s: s.encode("utf-8"))).map(
            lambda b: b.decode("utf-8", errors="replace")),
        st.text(max_size=200), NASTY_TEXT)
