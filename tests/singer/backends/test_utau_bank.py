"""Reading UTAU banks: oto.ini semantics, charsets, prefix.map, alias lookup, and a clear
error naming file and line for every malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from singer.backends.utau import BankError, UnknownSyllableError, UtauBank, check_bank, plan_units
from singer.contracts import SAMPLE_RATE_HZ, Note

SR = SAMPLE_RATE_HZ


def wav(path: Path, seconds: float = 1.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 44100)) / 44100
    sf.write(str(path), 0.1 * np.sin(2 * np.pi * 220 * t), 44100)


def bank(tmp_path: Path, oto: str | bytes, files: tuple[str, ...] = ("a.wav",),
         sub: str = "") -> Path:
    for name in files:
        wav(tmp_path / sub / name)
    data = oto.encode("utf-8") if isinstance(oto, str) else oto
    (tmp_path / sub / "oto.ini").write_bytes(data)
    return tmp_path


def notes(*lyrics: str, gap: float = 0.0) -> list[Note]:
    out, t = [], 0.5
    for lyric in lyrics:
        out.append(Note(int(t * SR), int((t + 0.4) * SR), 60.0, lyric, (lyric,)))
        t += 0.4 + gap
    return out


def test_oto_semantics_cutoffs_duplicates_stems_and_subfolders(tmp_path: Path) -> None:
    bank(tmp_path, "a.wav=ka,100,50,-300,80,-10\r\na.wav=ka,0,0,0,0,0\r\nb.wav=,10,5,200,20,5\r\n",
         ("a.wav", "b.wav"))
    bank(tmp_path, "c.wav=a ka,20,30,0,40,10\n", ("c.wav",), sub="deep/er")
    loaded = UtauBank.load(tmp_path)
    ka = loaded.entries["ka"]
    assert (ka.offset_ms, ka.end_ms, ka.preutterance_ms, ka.overlap_ms) == (100, 400, 80, -10)
    assert ka.line == 1  # the first duplicate wins
    assert loaded.entries["b"].end_ms == pytest.approx(800)  # cutoff ≥ 0 counts from the end
    assert loaded.entries["a ka"].wav == tmp_path / "deep/er/c.wav"
    assert [d.line for d in loaded.duplicates] == [2]
    assert any("already defined" in p for p in check_bank(tmp_path))


@pytest.mark.parametrize("charset,declare", [("gbk", None), ("gbk", "line"), ("gbk", "yaml"),
                                             ("shift_jis", None), ("shift_jis", "line"),
                                             ("utf-8", None)])
def test_charsets(tmp_path: Path, charset: str, declare: str | None) -> None:
    name = {"gbk": "八", "shift_jis": "ば", "utf-8": "ば"}[charset]
    head = f"#Charset:{charset}\n" if declare == "line" else ""
    body = f"{head}{name}.wav=ba,0,10,0,5,0\n{name}.wav=,0,10,0,5,0\n"
    bank(tmp_path, body.encode(charset), (f"{name}.wav",))
    (tmp_path / "character.txt").write_bytes(f"name={name}歌\n".encode(charset))
    if declare == "yaml":
        (tmp_path / "character.yaml").write_text(f"text_file_encoding: {charset}\n")
    loaded = UtauBank.load(tmp_path)
    assert loaded.entries["ba"].wav.name == f"{name}.wav"
    assert name in loaded.entries  # the empty alias is the file's stem, decoded right
    assert loaded.name == f"{name}歌"


def test_prefix_map_and_subbanks_choose_by_pitch(tmp_path: Path) -> None:
    bank(tmp_path, "a.wav=ka,0,10,0,5,0\na.wav=kaH,0,10,0,5,0\na.wav=↑ka,0,10,0,5,0\n")
    (tmp_path / "prefix.map").write_text("C4\t\t\nG4\t\tH\nG#4\t\tH\n", encoding="utf-8")
    loaded = UtauBank.load(tmp_path)
    assert loaded.get("ka", 60).alias == "ka"
    assert loaded.get("ka", 67).alias == "kaH"
    (tmp_path / "character.yaml").write_text(
        "subbanks:\n  - prefix: ↑\n    suffix: ''\n    tone_ranges: [C5-B7]\n", encoding="utf-8")
    assert UtauBank.load(tmp_path).get("ka", 74).alias == "↑ka"


def test_alias_styles_cv_vcv_cvvc_and_pinyin(tmp_path: Path) -> None:
    vcv = tmp_path / "vcv"
    bank(vcv, "a.wav=- ka,0,10,0,5,0\na.wav=a ka,0,10,0,5,0\na.wav=ka,0,10,0,5,0\n")
    kinds = [(u.kind, u.entry.alias) for u in plan_units(UtauBank.load(vcv), notes("ka", "ka"))]
    assert kinds == [("begin", "- ka"), ("vcv", "a ka")]
    cv = tmp_path / "cv"
    bank(cv, "a.wav=ka,0,10,0,5,0\n")
    kinds = [(u.kind, u.entry.alias) for u in plan_units(UtauBank.load(cv),
                                                          notes("ka", "ka", gap=0.2))]
    assert kinds == [("cv", "ka"), ("cv", "ka")]
    mandarin = tmp_path / "mandarin"  # pinyin CV + VC + ending, lyrics as characters
    bank(mandarin, "a.wav=ba,0,10,0,5,0\na.wav=ma,0,10,0,5,0\na.wav=a m,0,10,0,5,0\n"
         "a.wav=a R,0,10,0,5,0\n")
    units = plan_units(UtauBank.load(mandarin), notes("八", "妈"))
    assert [(u.kind, u.entry.alias) for u in units] == [("cv", "ba"), ("vc", "a m"),
                                                       ("cv", "ma"), ("end", "a R")]
    assert units[1].start > units[0].pos and units[1].pos == units[2].start


def test_presamp_decides_vowels_and_consonants(tmp_path: Path) -> None:
    bank(tmp_path, "a.wav=あ,0,10,0,5,0\na.wav=か,0,10,0,5,0\na.wav=a k,0,10,0,5,0\n")
    (tmp_path / "presamp.ini").write_text(
        "[VERSION]\n1.7\n[VOWEL]\na=あ=あ,か=100\n[CONSONANT]\nk=か=1\n", encoding="utf-8")
    units = plan_units(UtauBank.load(tmp_path), notes("あ", "か"))
    assert [u.entry.alias for u in units] == ["あ", "a k", "か"]


@pytest.mark.parametrize("oto,where,message", [
    ("a.wav=a,0,10,0,5,0\nmissing.wav=ka,0,10,0,5,0\n", ":2", "'missing.wav' does not exist"),
    ("a.wav=a,0,10,0,5,0\n\na.wav=ka,1O0,10,0,5,0\n", ":3", "offset '1O0' is not a number"),
    ("a.wav=ka,500,10,600,5,0\n", ":1", "before its offset 500 ms"),
    ("a.wav=ka,500,10,-2000,5,0\n", ":1", "after the end of 'a.wav'"),
    ("a.wav ka 0 10\n", ":1", "expected file.wav=alias"),
    ("#Charset:utf-8\na.wav=a,0,10,0,5,0\n", ":3", "not UTF-8 text"),
])
def test_malformed_oto_names_file_and_line(tmp_path: Path, oto: str, where: str,
                                           message: str) -> None:
    data = oto.encode() + ("a.wav=八,0,10,0,5,0\n".encode("gbk") if "Charset" in oto else b"")
    bank(tmp_path, data)
    with pytest.raises(BankError) as err:
        UtauBank.load(tmp_path)
    assert f"{tmp_path / 'oto.ini'}{where}: " in str(err.value) and message in str(err.value)
    assert [p for p in check_bank(tmp_path) if message in p]


def test_every_bad_line_is_listed_by_check(tmp_path: Path) -> None:
    bank(tmp_path, "a.wav=a,x,10,0,5,0\nb.wav=b,0,10,0,5,0\na.wav=c,0,10,0,5,0\n")
    problems = check_bank(tmp_path)
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in problems] == ["1", "2"]
    assert check_bank(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: not a folder"]


def test_other_bad_files_name_file_and_line(tmp_path: Path) -> None:
    bank(tmp_path, "a.wav=ka,0,10,0,5,0\n")
    (tmp_path / "prefix.map").write_text("C4\t\t\nH9\t\tx\n", encoding="utf-8")
    with pytest.raises(BankError, match=r"prefix\.map:2: 'H9' is not a note name"):
        UtauBank.load(tmp_path)
    (tmp_path / "prefix.map").unlink()
    (tmp_path / "character.yaml").write_text("text_file_encoding: klingon\n")
    with pytest.raises(BankError, match=r"character\.yaml:1: text_file_encoding: unknown"):
        UtauBank.load(tmp_path)


def test_a_syllable_the_bank_lacks_is_named(tmp_path: Path) -> None:
    bank(tmp_path, "a.wav=ka,0,10,0,5,0\n")
    with pytest.raises(UnknownSyllableError, match=r"syllable 'zhi' \(aliases tried: "):
        plan_units(UtauBank.load(tmp_path), notes("ka", "zhi"))
