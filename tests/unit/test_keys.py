"""Keys and registry rules that need no services: hashing, grants, body validation."""

from __future__ import annotations

import math
import re
import secrets
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from hub_stream.access.keys import Grants, NewKey, hash_secret, secrets_match
from schemas.keys import KeyBody
from schemas.programs import ProgramBody, is_program_id
from schemas.timefmt import format_utc as utc_text


def test_hash_is_sha256_and_matches_only_the_secret() -> None:
    secret = secrets.token_urlsafe(32)
    stored = hash_secret(secret)
    assert len(stored) == 32 and stored != secret.encode()
    assert secrets_match(secret, stored)
    assert secrets_match(secret, memoryview(stored))  # asyncpg may hand bytea as any buffer
    assert not secrets_match(secret + "x", stored)
    assert not secrets_match("", stored)


def test_new_key_repr_hides_the_secret() -> None:
    key = NewKey("u_abc", "very-secret-value")
    assert "very-secret-value" not in repr(key)


def test_generated_ids_and_secrets_carry_at_least_128_bits() -> None:
    # create_key uses token_hex(16) for ids (128 bits) and token_urlsafe(32) for secrets (256 bits).
    user_id = "u_" + secrets.token_hex(16)
    assert re.fullmatch(r"u_[0-9a-f]{32}", user_id)
    assert len(secrets.token_urlsafe(32)) * math.log2(64) >= 256


def test_grants() -> None:
    system = Grants("u1", system=True)
    assert system.can_read("ANY") and system.can_write("ANY")
    scoped = Grants("u2", programs={"ACME": "write", "BETA": "read"})
    assert scoped.can_read("ACME") and scoped.can_write("ACME")
    assert scoped.can_read("BETA") and not scoped.can_write("BETA")
    assert not scoped.can_read("acme") and not scoped.can_write("GAMMA")


@pytest.mark.parametrize("value", ["A", "a" * 25, "Acme_1.2-x", "...", "-_-"])
def test_program_id_rule_accepts(value: str) -> None:
    assert is_program_id(value)


@pytest.mark.parametrize("value", ["", "a" * 26, "a b", "a/b", "é", "a*b", "a\n", None, 5])
def test_program_id_rule_refuses(value: object) -> None:
    assert not is_program_id(value)


def test_utc_text_is_millisecond_z() -> None:
    moment = datetime(2026, 11, 22, 9, 0, 0, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert utc_text(moment) == "2026-11-22T08:00:00.123Z"
    assert utc_text(datetime(2026, 11, 22, 8, 0)) == "2026-11-22T08:00:00.000Z"
    assert utc_text(datetime(2026, 11, 22, 8, 0, tzinfo=UTC)) == "2026-11-22T08:00:00.000Z"


def _errors(model: type, doc: object) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(doc)  # type: ignore[attr-defined]
    return {".".join(map(str, e["loc"])): e["type"] for e in caught.value.errors()}


def test_program_body_defaults_and_lb_key_presence() -> None:
    body = ProgramBody.model_validate({"Name": "Acme"})
    assert body.CreationPath == "LH" and body.LbBaseUrl is None and body.LbApiKey is None
    assert body.keeps_stored_lb_api_key
    assert not ProgramBody.model_validate({"Name": "Acme", "LbApiKey": None}).keeps_stored_lb_api_key
    with_key = ProgramBody.model_validate({"Name": "Acme", "LbApiKey": "s3cret-KEY"})
    assert not with_key.keeps_stored_lb_api_key
    assert "s3cret-KEY" not in repr(with_key) and "s3cret-KEY" not in str(with_key)


@pytest.mark.parametrize("path", ["LH", "A", "A_1", "Z" * 15, "0_9"])
def test_creation_path_accepts(path: str) -> None:
    assert ProgramBody.model_validate({"Name": "x", "CreationPath": path}).CreationPath == path


@pytest.mark.parametrize("path", ["", "lh", "Z" * 16, "A-B", "A B", "Ä"])
def test_creation_path_refuses(path: str) -> None:
    assert "CreationPath" in _errors(ProgramBody, {"Name": "x", "CreationPath": path})


@pytest.mark.parametrize("url", ["https://lb.example.com", "http://127.0.0.1:8081/base/", "https://h/lb"])
def test_lb_base_url_accepts(url: str) -> None:
    assert ProgramBody.model_validate({"Name": "x", "LbBaseUrl": url}).LbBaseUrl == url


@pytest.mark.parametrize(
    "url",
    ["", "lb.example.com", "ftp://lb.example.com", "https://", "https://u:p@h", "https://h/?a=1", "https://h/#x",
     "https://h:99999", "https://h /x"],
)
def test_lb_base_url_refuses(url: str) -> None:
    assert "LbBaseUrl" in _errors(ProgramBody, {"Name": "x", "LbBaseUrl": url})


def test_lb_api_key_refuses_header_breaking_values_without_echoing_them() -> None:
    with pytest.raises(ValidationError) as caught:
        ProgramBody.model_validate({"Name": "x", "LbApiKey": "abc\r\nX-Evil: 1"})
    assert "X-Evil" not in str(caught.value)
    assert "LbApiKey" in _errors(ProgramBody, {"Name": "x", "LbApiKey": ""})


def test_emails() -> None:
    ok = ProgramBody.model_validate({"Name": "x", "SendSuccessEmailTo": "a@b.org; c@d.com,e@f.net"})
    assert ok.SendSuccessEmailTo == "a@b.org; c@d.com,e@f.net"
    assert "SendFailureEmailTo" in _errors(ProgramBody, {"Name": "x", "SendFailureEmailTo": "not-an-address"})


def test_program_body_lists_every_problem() -> None:
    errors = _errors(ProgramBody, {"Name": 5, "LbApiKey": 7, "CreationPath": None, "Extra": 1, "Other": 2})
    assert errors == {
        "Name": "string_type",
        "LbApiKey": "string_type",
        "CreationPath": "string_type",
        "Extra": "extra_forbidden",
        "Other": "extra_forbidden",
    }
    assert _errors(ProgramBody, {}) == {"Name": "missing"}
    assert "Name" in _errors(ProgramBody, {"Name": "   "})


def test_key_body_kinds() -> None:
    assert KeyBody.model_validate({"System": True}).System is True
    assert KeyBody.model_validate({"Programs": {"A": "read", "B": "write"}}).Programs == {"A": "read", "B": "write"}


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"System": False},
        {"System": True, "Programs": {"A": "read"}},
        {"Programs": {}},
        {"Programs": {"A": "admin"}},
        {"Programs": ["A"]},
        {"System": "true"},
        {"System": 1},
        {"System": True, "Extra": 1},
    ],
)
def test_key_body_refuses(doc: dict) -> None:
    with pytest.raises(ValidationError):
        KeyBody.model_validate(doc)
