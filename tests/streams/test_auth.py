"""The one token check every surface uses, and which addresses stay on this machine."""

from __future__ import annotations

import pytest

from streams import osc
from streams.auth import is_loopback, token_matches


@pytest.mark.parametrize(("given", "expected", "match"), [
    ("s3cret", "s3cret", True), ("s3cre", "s3cret", False), ("s3cretX", "s3cret", False),
    ("", "s3cret", False), (None, "s3cret", False), (123, "123", False),
    (b"s3cret", "s3cret", False), ("秘密", "秘密", True), ("\udcff", "s3cret", False)])
def test_token_matches_only_the_same_string(given: object, expected: str, match: bool) -> None:
    assert token_matches(given, expected) is match


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("LocalHost", True), ("0.0.0.0", False), ("::", False),
    ("192.168.1.5", False), ("evil.example", False), ("localhost.evil.example", False),
    ("evil.localhost", False), ("", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert osc.is_loopback is is_loopback  # one home, still importable from the OSC module
