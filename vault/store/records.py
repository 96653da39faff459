"""Signed TOML records: canonical bytes, Ed25519 signatures and JSON Schema validation."""

from __future__ import annotations

import base64
import datetime
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Protocol


from vault import schemas  # type: ignore[attr-defined]  # schemas/ ships as vault.schemas (pyproject package-dir)
from vault.store import fastschema
from vault.crypto import sign
from vault.errors import AuthenticationError, FormatError, IntegrityError
from vault.i18n import Message, N_
from vault.store import write_atomic
from vault.store import tomlread, tomlwrite
from vault.store import read_regular

SIGNATURE_DOMAIN = b"vault-record-v1\n"


def canonical(data: Mapping[str, Any]) -> bytes:
    """The bytes a record's signature covers: sorted-key compact JSON of everything but ``signature``.

    Signing a canonical form rather than the TOML text means reformatting a file (or another TOML
    writer) cannot break a signature, while any change of a value does.
    """
    body = {k: v for k, v in data.items() if k != "signature"}
    return SIGNATURE_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Signer(Protocol):
    """Anything that signs with a member's Ed25519 key (an unlocked identity, or an agent holding it)."""

    def sign(self, message: bytes) -> bytes: ...


def sign_record(data: dict[str, Any], *, signer: str, key: Signer) -> dict[str, Any]:
    """Return ``data`` with a ``signature`` table by member ``signer``, signed by ``key``."""
    out = {k: v for k, v in data.items() if k != "signature"}
    sig = key.sign(canonical(out))
    out["signature"] = {"by": signer, "ed25519": base64.b64encode(sig).decode()}
    return out


def verify_record(data: Mapping[str, Any], public: str, *, what: str) -> None:
    """Check the record's signature against signing public key ``public``; IntegrityError names ``what``."""
    sig = data.get("signature")
    if not isinstance(sig, dict) or not isinstance(sig.get("ed25519"), str):
        raise IntegrityError(N_("{what}: signature missing"), what=what)
    try:
        raw = base64.b64decode(sig["ed25519"], validate=True)
        sign.verify(public, canonical(data), raw)
    except (AuthenticationError, ValueError):
        raise IntegrityError(N_("{what}: bad signature (tampered or damaged)"), what=what) from None


@lru_cache(maxsize=None)
def _schema(name: str) -> dict[str, Any]:
    # Next to the package's __init__, not through importlib.resources: that module (with zipfile and
    # tempfile behind it) cost more to import than reading the file.
    text = (Path(schemas.__file__).parent / f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def _fast_check(name: str) -> fastschema.Check | None:
    return fastschema.compile(_schema(name))


@lru_cache(maxsize=None)
def _validator(name: str) -> Any:
    return json_validator(_schema(name))


def json_validator(schema: dict[str, Any]) -> Any:
    """jsonschema's Draft 2020-12 validator for ``schema``, its ``pattern`` read with ECMA-262's ``$``
    as ``fastschema`` reads it (``fastschema.python_pattern``): the two agree on every text."""
    return _json_class()(schema)


@lru_cache(maxsize=None)
def _json_class() -> Any:
    import jsonschema  # only to word an error, or for a schema outside fastschema's subset

    def pattern(validator: Any, want: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not re.search(fastschema.python_pattern(want), instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {want!r}")

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})


def validate(data: Any, schema: str, *, what: str) -> None:
    """Validate ``data`` against ``schemas/<schema>.schema.json``; FormatError names the first problem."""
    fast = _fast_check(schema)
    if fast is not None and fast(data):
        return
    errors = sorted(_validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or Message(N_("(top level)"))
        raise FormatError(N_("{what}: {where}: {message_}"), what=what, where=where, message_=err.message)


def load_toml(path: Path, *, schema: str | None = None, what: str | None = None) -> dict[str, Any]:
    """Read and parse a TOML file, validating it against ``schema`` when given."""
    return parse_toml(read_regular(path, name=what), schema=schema, what=what or str(path))


def parse_toml(raw: bytes, *, schema: str | None = None, what: str) -> dict[str, Any]:
    """Parse a TOML record's bytes, validating it against ``schema`` when given."""
    try:
        data = tomlread.loads(raw.decode("utf-8"))
    except (tomlread.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FormatError(N_("{what}: not valid TOML ({e})"), hint=N_("the file is damaged; run 'vault check'"), what=what, e=e) from None
    _no_datetimes(data, what)
    if schema:
        validate(data, schema, what=what)
    return data


def _no_datetimes(value: Any, what: str) -> None:
    """The format writes times as strings: a TOML date or time (hand-edited) is refused here, before
    a signature check would fail to put it into canonical JSON."""
    if isinstance(value, dict):
        for v in value.values():
            _no_datetimes(v, what)
    elif isinstance(value, list):
        for v in value:
            _no_datetimes(v, what)
    elif isinstance(value, (datetime.date, datetime.time)):
        raise FormatError(N_("{what}: holds a TOML date or time where the format has a string"),
                          hint=N_("the file is damaged or was edited by hand; run 'vault check'"), what=what)


def dump_toml(data: Mapping[str, Any]) -> bytes:
    """Serialise a record as TOML."""
    return tomlwrite.dumps(dict(data)).encode()


def write_toml(path: Path, data: Mapping[str, Any], *, sync: bool = True) -> None:
    """Atomically write a record as TOML."""
    write_atomic(path, dump_toml(data), mode=0o644, sync=sync)
