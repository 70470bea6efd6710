"""Cue list files (``stage.cuelist``): any text ends in a ``CueList`` or a one-line
``CueListError`` naming the file (YAML aliases, deep nesting and huge lists included)."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from stage.cuelist import CueList, CueListError, dump_cue_list, parse_cue_list
from tests.fuzz.strategies import NASTY_TEXT, text_mutations

pytestmark = pytest.mark.timeout(60)

SEED = """\
cues:
  - id: "1"
    name: Jasmine, soprano
    do:
      - song.load: jasmine
      - voice: soprano
      - song.play: 0
  - id: "2"
    do:
      - expr: {name: vibrato_depth, value: 1.6, singer: alto}
      - note.on: {pitch: 60, velocity: 0.5, syllable: la}
      - tempo: 96
"""
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | NASTY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY_TEXT, inner, max_size=3),
    max_leaves=10)
KINDS = st.sampled_from(["song.load", "song.play", "expr", "note.on", "tempo", "lyric", "go",
                         "voice", "panic", "x"]) | NASTY_TEXT
STRUCTURED = st.fixed_dictionaries({"cues": st.lists(st.fixed_dictionaries(
    {"id": VALUES, "do": st.lists(st.dictionaries(KINDS, VALUES, min_size=1, max_size=2),
                                  max_size=4)}, optional={"name": VALUES}), max_size=4)},
    optional={"backing": VALUES}).map(lambda d: json.dumps(d, allow_nan=True))


@given(st.one_of(text_mutations(st.just(SEED)), STRUCTURED))
@example("cues:\n- id: \"a\\nb\"\n  do: [{x: 1}]\n")  # found: the id's newline split the error
@example("cues: " + "[" * 1500)  # found: RecursionError escaped
@example("cues:\n- {id: 1, do: []}\n- {id: 1, do: []}\n")  # found: no file name in it
@example("a: &a [" + ", ".join(["*a"] * 0) + "]\ncues: []\n")
def test_any_text_is_a_cue_list_or_a_one_line_error(text: str) -> None:
    try:
        cues = parse_cue_list(text, "show.yaml")
    except CueListError as err:
        message = str(err)
        assert message.startswith("show.yaml") and "\n" not in message, repr(message)
        return
    assert isinstance(cues, CueList)
    again = parse_cue_list(dump_cue_list(cues), "again.yaml")
    assert [e.id for e in again.entries] == [e.id for e in cues.entries]


def test_the_seed_itself_loads() -> None:
    cues = parse_cue_list(SEED, "show.yaml")
    assert [e.id for e in cues.entries] == ["1", "2"]
