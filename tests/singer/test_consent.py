"""Consent and licence records: voices' YAML records, voice banks' terms, VRM meta — and the
show refusing what a record does not allow (``serve --usage``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
from pathlib import Path

import pytest

from rigs.avatar import build_default_avatar
from rigs.consent import read_avatar_licence
from singer.provenance.consent import (
    ConsentError,
    bank_voice_record,
    builtin_voice_record,
    load_voice_record,
    voice_record,
)
from stage.cli import main
from stage.serve import ServeError, ServeOptions, check_options

ZEROS = '"' + "0" * 64 + '"'
PERSON = """voice: mei
given_by: Mei Example (recorded 2025-03-01 in Studio 7)
synthetic: false
scope: this company's live shows
usage: commercial
credit: "voice: Mei Example"
expires: 2099-12-31
revoked: null
consent_statement_sha256: {digest}
"""


def _with_meta(src: Path, dst: Path, **meta: object) -> Path:
    """A copy of the VRM at ``src`` with its VRMC_vrm meta fields replaced by ``meta``."""
    data = src.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + length])
    doc["extensions"]["VRMC_vrm"]["meta"].update(meta)
    for key in [k for k, v in meta.items() if v is None]:
        del doc["extensions"]["VRMC_vrm"]["meta"][key]
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    rest = data[20 + length:]
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + rest
    dst.write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body)
    return dst


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_default_avatar(tmp_path_factory.mktemp("vrm") / "idol.vrm")


def test_builtin_voices_and_default_avatar_allow_every_use(avatar: Path) -> None:
    for name in ("soprano", "tenor"):
        record = builtin_voice_record(name)
        assert record.synthetic and record.usage == "corporation"
        assert "allowed for corporation use" in record.check("corporation")
    licence = read_avatar_licence(avatar)
    assert licence.usage == "corporation" and licence.credit == ""


def test_a_vrm_forbidding_corporate_use_is_refused_under_usage_corporation(
        avatar: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    personal = _with_meta(avatar, tmp_path / "personal.vrm", commercialUsage="personalProfit",
                          creditNotation="required", authors=["K. Artist"])
    code = main(["serve", "--avatar", str(personal), "--usage", "corporation", "--headless",
                 "--osc-port", "0", "--http-port", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "commercialUsage personalProfit" in err and "not corporation use" in err
    # a person's paid show is what it allows; then its credit is required
    check_options(ServeOptions(avatar=personal, usage="commercial"))
    licence = read_avatar_licence(personal)
    assert licence.credit == "avatar: Lumi (livesinger default avatar) by K. Artist"
    # fields left out take VRM 1.0's most restrictive defaults: personal non-profit use
    bare = _with_meta(avatar, tmp_path / "bare.vrm", commercialUsage=None)
    assert read_avatar_licence(bare).usage == "personal"
    assert "commercialUsage" in read_avatar_licence(bare).defaulted
    with pytest.raises(ServeError, match="personalNonProfit"):
        check_options(ServeOptions(avatar=bare, usage="commercial"))
    odd = _with_meta(avatar, tmp_path / "odd.vrm", commercialUsage="sometimes")
    with pytest.raises(ConsentError, match="commercialUsage 'sometimes' is not one of"):
        read_avatar_licence(odd)


def test_a_person_s_voice_record_checks_its_consent_statement(tmp_path: Path) -> None:
    statement = tmp_path / "consent.txt"
    statement.write_text("I, Mei Example, agree that my recorded voice ...", encoding="utf-8")
    digest = hashlib.sha256(statement.read_bytes()).hexdigest()
    path = tmp_path / "voice.yaml"
    path.write_text(PERSON.format(digest=f'"{digest}"') + "consent_statement: consent.txt\n")
    record = load_voice_record(path)
    assert record.consent_statement_sha256 == digest and record.credit == "voice: Mei Example"
    assert "allowed for commercial use" in record.check("commercial")
    with pytest.raises(ConsentError, match="allows commercial use only, not corporation"):
        record.check("corporation")
    statement.write_text("something else")
    with pytest.raises(ConsentError, match="does not match consent_statement_sha256"):
        load_voice_record(path)


@pytest.mark.parametrize(("text", "message"), [
    ("voice: x\nsynthetic: true\n", "missing field(s) given_by, scope, usage"),
    (PERSON.format(digest="null"), "needs consent_statement_sha256"),
    (PERSON.format(digest="abc"), "consent_statement_sha256 must be 64 hex digits"),
    (PERSON.format(digest="1" * 64), "consent_statement_sha256 must be quoted text"),
    (PERSON.format(digest=ZEROS).replace("commercial", "broadcast"),
     "usage must be one of personal, commercial, corporation, not 'broadcast'"),
    (PERSON.format(digest=ZEROS).replace("2099-12-31", "next year"),
     "expires must be a date YYYY-MM-DD"),
    (PERSON.format(digest=ZEROS) + "colour: red\n", "unknown field(s) colour"),
    ("- just\n- a list\n", "a voice record is a YAML mapping"),
    ("voice: [unclosed\n", "the voice record is not YAML"),
])
def test_bad_records_get_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "voice.yaml"
    path.write_text(text)
    with pytest.raises(ConsentError) as err:
        load_voice_record(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_expired_or_revoked_consent_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "voice.yaml"
    path.write_text(PERSON.format(digest=ZEROS).replace("2099-12-31", "2024-01-31"))
    with pytest.raises(ConsentError, match="consent expired on 2024-01-31"):
        load_voice_record(path).check("personal")
    path.write_text(PERSON.format(digest=ZEROS).replace("revoked: null",
                                                           "revoked: 2025-06-01"))
    with pytest.raises(ConsentError, match="consent revoked on 2025-06-01"):
        load_voice_record(path).check("personal", today=dt.date(2025, 7, 1))
    assert load_voice_record(path).check("personal", today=dt.date(2025, 5, 1))


def test_voice_banks_use_their_record_else_their_readme_terms(tmp_path: Path) -> None:
    bank = tmp_path / "bank"
    bank.mkdir()
    with pytest.raises(ConsentError, match="no consent record .* and no readme"):
        bank_voice_record(bank)
    (bank / "readme.txt").write_text("Free for non-commercial covers. Credit: A. Singer\n")
    record = voice_record(str(bank))
    assert record.usage == "personal" and record.source.startswith("readme terms of")
    assert "Free for non-commercial covers" in record.scope
    with pytest.raises(ServeError, match="allows personal use only, not commercial"):
        check_options(ServeOptions(voice=str(bank), usage="commercial"))
    (bank / "voice.yaml").write_text(PERSON.format(digest=ZEROS).replace("mei", "bank"))
    assert voice_record(str(bank)).usage == "commercial"
    check_options(ServeOptions(voice=str(bank), usage="commercial"))
    with pytest.raises(ServeError, match="--usage broadcast"):
        check_options(ServeOptions(usage="broadcast"))
