"""Operators and tokens of the station service, without a server."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from devicectl.errors import ConfigError
from devicectl.station.auth import Operator, OperatorStore, TokenBook


def test_operators_are_enrolled_by_a_supervisor_with_a_salted_scrypt_hash(tmp_path: Path) -> None:
    path = tmp_path / "ops.json"
    store = OperatorStore(path)
    with pytest.raises(ConfigError, match="supervisor first"):
        store.add("tech", "1234")
    store.add("sup", "9999", "supervisor")
    with pytest.raises(ConfigError, match="only a supervisor"):
        store.add("tech", "1234", by=Operator("other", "operator"))
    store.add("tech", "1234", by=Operator("sup", "supervisor"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "1234" not in text and "9999" not in text
    assert store.verify("tech", "1234") == Operator("tech", "operator")
    assert store.verify("tech", "1235") is None
    assert store.verify("nobody", "1234") is None
    with pytest.raises(ConfigError, match="already enrolled"):
        store.add("tech", "5678", by=Operator("sup", "supervisor"))


def test_tokens_expire_and_are_revoked() -> None:
    book = TokenBook(ttl_s=10.0)
    assert book.check(book.station_token, 0.0) is not None
    assert book.check("guess", 0.0) is None
    token = book.issue(Operator("tech", "operator"), 0.0)
    grant = book.check(token, 5.0)
    assert grant is not None and grant.operator == Operator("tech", "operator")
    assert book.check(token, 10.0) is None
    token = book.issue(Operator("tech", "operator"), 0.0)
    book.revoke(token)
    assert book.check(token, 1.0) is None
