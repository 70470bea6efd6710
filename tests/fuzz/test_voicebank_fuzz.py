"""Voicebank files as they arrive (``singer.backends.utau``: oto.ini, character.txt/yaml,
prefix.map, presamp.ini; ``singer.backends.diffsinger``: dsconfig.yaml, dsdict.yaml,
phonemes, languages): any content ends in a loaded bank or a one-line ``BankError``."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from singer.backends.diffsinger import config as ds
from singer.backends.diffsinger.errors import BankError as DsBankError
from singer.backends.utau.bank import UtauBank
from singer.backends.utau.errors import BankError as UtauBankError
from tests.fuzz.strategies import mutated

pytestmark = pytest.mark.timeout(60)
_serial = itertools.count()

OTO = "#Charset: utf-8\na.wav=a,10,50,-200,30,10\nka.wav=- ka,0,80,120,60,20\nka.wav=ka,,,,,\n"
CHARACTER_TXT = "name=Fuzz\nimage=icon.bmp\nauthor=nobody\n"
CHARACTER_YAML = ("text_file_encoding: utf-8\nsubbanks:\n- prefix: ''\n  suffix: '_H'\n"
                  "  tone_ranges: [C4-B7]\n- suffix: '_L'\n  tone_ranges: [C1-B3, C#8]\n")
PREFIX_MAP = "C4\t\t_H\nC#4\tp\t\nB7\t\t_H\n"
PRESAMP = "[VOWEL]\na=a,ka,sa=100\n[CONSONANT]\nk=ka,ki=0\n"
UTAU_FILES = {"oto.ini": OTO, "character.txt": CHARACTER_TXT, "character.yaml": CHARACTER_YAML,
              "prefix.map": PREFIX_MAP, "presamp.ini": PRESAMP}

DSCONFIG = ("phonemes: phonemes.txt\nacoustic: acoustic.onnx\nvocoder: nsf_hifigan\n"
            "hidden_size: 256\nspeakers: [a, b]\nuse_key_shift_embed: true\n"
            "augmentation_args:\n  random_pitch_shifting:\n    range: [-5, 5]\n"
            "sample_rate: 44100\nhop_size: 512\nnum_mel_bins: 128\nmel_fmin: 40\n"
            "mel_fmax: 16000\nmax_depth: 0.6\nuse_variable_depth: true\n")
DSDICT = ("symbols:\n- {symbol: a, type: vowel}\n- {symbol: k, type: stop}\n"
          "entries:\n- {grapheme: ka, phonemes: [k, a]}\n")
PHONEMES = "<PAD>\nSP\nAP\na\nk\n"
LANGUAGES = '{"zh": 1, "en": 2}'


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("banks")


def one_line(err: Exception) -> None:
    assert str(err) and "\n" not in str(err), repr(str(err))


def _mutations(text: str) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(st.just(text.encode("utf-8"))), st.binary(max_size=80),
                     st.just(text.encode("utf-8")))


@given(st.fixed_dictionaries({}, optional={k: _mutations(v) for k, v in UTAU_FILES.items()}))
@example({"oto.ini": OTO.encode(), "character.yaml": b"a: " + b"[" * 1500})
def test_any_utau_bank_files(root: Path, files: dict[str, bytes]) -> None:
    folder = root / f"utau{next(_serial)}"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    try:
        bank = UtauBank.load(folder)
    except UtauBankError as err:
        one_line(err)
    else:
        assert bank.entries or not files.get("oto.ini", b"").strip()
    finally:
        shutil.rmtree(folder)


READERS = {"dsconfig.yaml": (ds.read_dsconfig, DSCONFIG), "dsdict.yaml": (ds.read_dsdict, DSDICT),
           "phonemes.txt": (ds.read_phonemes, PHONEMES),
           "phonemes.json": (ds.read_phonemes, '{"<PAD>": 0, "SP": 1, "AP": 2}'),
           "languages.json": (ds.read_languages, LANGUAGES)}


def _read(root: Path, name: str, raw: bytes) -> None:
    reader, _seed = READERS[name]
    folder = root / f"ds{next(_serial)}"
    folder.mkdir()
    path = folder / name
    path.write_bytes(raw)
    try:
        reader(path)
    except DsBankError as err:
        one_line(err)
    finally:
        shutil.rmtree(folder)


@given(st.sampled_from(sorted(READERS)), st.data())
def test_any_diffsinger_file(root: Path, name: str, data: st.DataObject) -> None:
    _read(root, name, data.draw(_mutations(READERS[name][1])))


@pytest.mark.parametrize(("name", "raw"), [
    ("dsconfig.yaml", b"augmentation_args: 5\n"),
    ("dsconfig.yaml", b"augmentation_args: {random_pitch_shifting: 5}\n"),
    ("dsconfig.yaml", b"\0"), ("dsconfig.yaml", b"a: " + b"[" * 1500),
    ("phonemes.txt", b"\xff\xfe\xfd"), ("phonemes.json", b"\xc3("),
    ("languages.json", b"[" * 1500), ("dsdict.yaml", b"\0")])
def test_diffsinger_files_found_by_fuzzing(root: Path, name: str, raw: bytes) -> None:
    _read(root, name, raw)
