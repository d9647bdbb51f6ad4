"""Who may do what at a station: enrolled operators, their PINs, and tokens.

- :class:`OperatorStore`: operators enrolled with ``devicectl operators add``, in
  one JSON file (``--operators PATH``, else ``$DEVICECTL_OPERATORS``, else
  ``./devicectl-operators.json``), written atomically with mode 0600. A PIN is
  never stored: only its scrypt hash (n=2**14, r=8, p=1, a fresh 16-byte salt per
  operator), compared in constant time. Roles: ``operator`` and ``supervisor``;
  the first operator enrolled must be a supervisor, and after that only a
  supervisor (with their PIN) enrols anyone.
- :class:`TokenBook`: the tokens a station accepts, in the service's memory. The
  *station token* is written at start to a file only the station's user can
  read (mode 0600, next to the Unix socket): whoever can read it may connect,
  which is the same trust as access to the socket itself. *Operator tokens* are
  issued by ``sign_in`` (12 hours, revoked by ``sign_out`` and at restart); a
  connection that presents one is signed in as that operator from its first
  message, which is how a tablet reconnects without asking for the PIN again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from devicectl.errors import ConfigError

ENV_VAR = "DEVICECTL_OPERATORS"
DEFAULT_PATH = "devicectl-operators.json"
ROLES = ("operator", "supervisor")
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
MIN_PIN_LEN = 4
OPERATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TOKEN_TTL_S = 12 * 3600.0


def operators_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The operators file: ``path``, else ``$DEVICECTL_OPERATORS``, else the default."""
    return Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)


@dataclass(frozen=True)
class Operator:
    id: str
    role: str


class OperatorStore:
    """The enrolled operators of one file (thread-safe reads; writes replace the file)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = operators_path(path)
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"operators file {self.path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(text)
            operators = data["operators"]
            if not isinstance(operators, dict):
                raise TypeError("operators is not a table")
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"operators file {self.path}: not a devicectl operators file"
            ) from exc
        return operators

    def _save(self, operators: dict[str, dict[str, object]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".operators-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": 1, "operators": operators}, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def list(self) -> list[Operator]:
        with self._lock:
            return [Operator(k, str(v.get("role", "operator"))) for k, v in self._load().items()]

    def add(
        self, operator_id: str, pin: str, role: str = "operator", *, by: Operator | None = None
    ) -> Operator:
        """Enrol ``operator_id``. ``by``: the supervisor enrolling them (checked with
        :meth:`verify` by the caller); needed unless the file has no one yet, and the
        first operator must then be a supervisor."""
        if not OPERATOR_ID.match(operator_id):
            raise ConfigError(
                f"operator id {operator_id!r}: letters, digits, '.', '_' or '-' (at most 64)"
            )
        if role not in ROLES:
            raise ConfigError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        if len(pin) < MIN_PIN_LEN:
            raise ConfigError(f"the PIN must have at least {MIN_PIN_LEN} characters")
        with self._lock:
            operators = self._load()
            if operators:
                if by is None or by.role != "supervisor":
                    raise ConfigError("only a supervisor enrols operators (--supervisor ID)")
            elif role != "supervisor":
                raise ConfigError(
                    f"{self.path} has no operators yet: "
                    "enrol a supervisor first (--role supervisor)"
                )
            if operator_id in operators:
                raise ConfigError(f"operator {operator_id!r} is already enrolled")
            salt = secrets.token_bytes(16)
            operators[operator_id] = {
                "role": role,
                "scrypt": {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
                "salt": salt.hex(),
                "hash": _scrypt(pin, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex(),
            }
            self._save(operators)
        return Operator(operator_id, role)

    def verify(self, operator_id: str, pin: str) -> Operator | None:
        """The operator if ``pin`` is theirs, else None (slow on purpose: scrypt)."""
        entry = self._load().get(operator_id)
        if entry is None:
            # The same work for an unknown id: the answer's time does not tell who exists.
            _scrypt(pin, b"\0" * 16, SCRYPT_N, SCRYPT_R, SCRYPT_P)
            return None
        params = entry.get("scrypt")
        try:
            assert isinstance(params, dict)
            digest = _scrypt(
                pin,
                bytes.fromhex(str(entry["salt"])),
                int(params["n"]),
                int(params["r"]),
                int(params["p"]),
            )
            ok = hmac.compare_digest(digest, bytes.fromhex(str(entry["hash"])))
        except (AssertionError, KeyError, ValueError, TypeError):
            return None
        return Operator(operator_id, str(entry.get("role", "operator"))) if ok else None


@dataclass(frozen=True)
class Grant:
    """What a presented token stands for: the station token (no operator) or an operator."""

    operator: Operator | None
    token: str


class TokenBook:
    """Tokens the running service accepts (in memory; a restart revokes them all)."""

    def __init__(self, station_token: str | None = None, ttl_s: float = TOKEN_TTL_S) -> None:
        self.station_token = station_token or secrets.token_urlsafe(32)
        self.ttl_s = ttl_s
        self._operators: dict[str, tuple[Operator, float]] = {}
        self._lock = threading.Lock()

    def issue(self, operator: Operator, now_s: float) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._operators[token] = (operator, now_s + self.ttl_s)
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._operators.pop(token, None)

    def check(self, token: str | None, now_s: float) -> Grant | None:
        """The grant of ``token``, or None if it is not (or no longer) valid."""
        if not token:
            return None
        if hmac.compare_digest(token, self.station_token):
            return Grant(None, token)
        with self._lock:
            entry = self._operators.get(token)
            if entry is None:
                return None
            operator, expires_s = entry
            if now_s >= expires_s:
                del self._operators[token]
                return None
        return Grant(operator, token)


def write_token_file(path: Path, token: str) -> None:
    """Write the station token, readable by the station's user only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")


def token_file_for(unix_path: str | os.PathLike[str]) -> Path:
    """Where the station token of the socket ``unix_path`` is kept: beside it."""
    return Path(str(unix_path) + ".token")
