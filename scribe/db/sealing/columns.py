"""Sealed columns in the ORM. A clinical column is declared ``Sealed``; its table says whose
key seals it (``seal_scope``) and which of its columns identify the row
(``__seal_binding__``). Before a flush every new or changed sealed value is sealed under
that key and bound to that row; when a row is loaded its sealed values are opened with the
same binding, so a value moved to another row or column does not open. A sealed column
handed a bare value (a bulk UPDATE, a raw insert) refuses to write it.

Nothing happens at import: ``install(engine, vault)`` attaches the vault to one engine
(through the engine's own execution options, so it lives and dies with the engine) and
registers the ORM listeners once."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Text, event, inspect
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from scribe.db.sealing.envelope import Scope, SealingError, Shredded

if TYPE_CHECKING:
    from scribe.db.sealing.vault import DataKeyRef, Vault

OPTION = "scribe_vault"
SHREDDED_TEXT = "[destroyed]"
SHREDDED_JSON: Any = None


@dataclass(frozen=True)
class _SealedToken:
    """A sealed value on its way to or from the database, never plaintext."""

    token: str

    def __str__(self) -> str:  # fail closed: an unopened value is never shown or used as text
        raise SealingError("a sealed value was read without its row (open it through the ORM)")


class Sealed(TypeDecorator[Any]):
    """A clinical column: text or JSON, stored as AES-GCM ciphertext bound to its row."""

    impl = Text
    cache_ok = True

    def __init__(self, label: str, *, is_json: bool = False, as_date: bool = False) -> None:
        super().__init__()
        self.label = label
        self.is_json = is_json
        self.as_date = as_date

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, _SealedToken):
            raise SealingError(f"{self.label} is sealed: write it through the ORM unit of work")
        return value.token

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else _SealedToken(value)


def install(engine: Engine, vault: Vault) -> None:
    """Seal and open this engine's clinical columns with ``vault``."""
    engine.update_execution_options(**{OPTION: vault})
    _register_listeners()


def vault_for(bind: Engine | Connection) -> Vault:
    vault = bind.get_execution_options().get(OPTION)
    if vault is None:
        raise SealingError("no encryption key is loaded for this database")
    return vault  # type: ignore[no-any-return]


_SEALED_COLUMNS: dict[type, tuple[tuple[str, Sealed], ...]] = {}


def sealed_columns(cls: type) -> tuple[tuple[str, Sealed], ...]:
    """A table class's sealed columns (looked up once per class; a race only computes it twice)."""
    found = _SEALED_COLUMNS.get(cls)
    if found is None:
        try:
            mapper: Any = inspect(cls)
            found = tuple((c.key, c.type) for c in mapper.columns if isinstance(c.type, Sealed))
        except NoInspectionAvailable:
            found = ()
        _SEALED_COLUMNS[cls] = found
    return found


def binding_of(obj: Any, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The row's identifying columns (``__seal_binding__``), known before it is inserted."""
    names: tuple[str, ...] = getattr(type(obj), "__seal_binding__", ())
    if not names:
        raise SealingError(f"{type(obj).__name__} declares no __seal_binding__")
    source = values if values is not None else {n: getattr(obj, n) for n in names}
    binding = {n: source.get(n) for n in names}
    missing = [n for n, v in binding.items() if v is None]
    if missing:
        raise SealingError(f"{type(obj).__name__}: save {', '.join(missing)} before its sealed columns")
    return binding


def _encode(column: Sealed, value: Any) -> bytes:
    if column.as_date:
        return value.isoformat().encode("ascii")  # type: ignore[no-any-return]
    return (json.dumps(value, ensure_ascii=False) if column.is_json else str(value)).encode("utf-8")


def _decode(column: Sealed, raw: bytes) -> Any:
    text = raw.decode("utf-8")
    if column.as_date:
        return date.fromisoformat(text)
    return json.loads(text) if column.is_json else text


def _seal_on_flush(session: OrmSession, _context: Any, _instances: Any) -> None:
    pending: list[tuple[Any, str, Any]] = session.info.setdefault("_sealed_restore", [])
    keys: dict[Scope, DataKeyRef] = {}  # one lookup per owner and kind, not per row
    for obj in list(session.new) + list(session.dirty):
        columns = sealed_columns(type(obj))
        if not columns:
            continue
        state = inspect(obj)
        names = getattr(type(obj), "__seal_binding__", ())
        moved = not state.pending and any(state.attrs[n].history.has_changes() for n in names)
        todo = [(c, t) for c, t in columns
                if (state.pending or moved or state.attrs[c].history.has_changes())
                and getattr(obj, c) is not None and not isinstance(getattr(obj, c), _SealedToken)]
        if not todo:
            continue
        vault = vault_for(session.get_bind())
        scope = obj.seal_scope(session)
        if scope not in keys:
            keys[scope] = vault.key_for(session, scope, datetime.now(UTC))
        binding = binding_of(obj)
        for c, column in todo:
            value = getattr(obj, c)
            setattr(obj, c, _SealedToken(vault.seal_value(keys[scope], _encode(column, value), column.label, binding)))
            pending.append((obj, c, value))


def _restore_after_flush(session: OrmSession, _context: Any) -> None:
    for obj, column, value in session.info.pop("_sealed_restore", []):
        set_committed_value(obj, column, value)


def _forget_pending(session: OrmSession) -> None:
    for obj, column, value in session.info.pop("_sealed_restore", []):
        if isinstance(obj.__dict__.get(column), _SealedToken):
            set_committed_value(obj, column, value)


def open_row(obj: Any) -> None:
    """Open the sealed values of a row just loaded, bound to that row."""
    columns = sealed_columns(type(obj))
    loaded = obj.__dict__
    if not columns or not any(isinstance(loaded.get(c), _SealedToken) for c, _ in columns):
        return
    session = inspect(obj).session
    if session is None:
        raise SealingError("a sealed row was loaded outside a database session")
    vault = vault_for(session.get_bind())
    binding = binding_of(obj, loaded)
    for c, column in columns:
        raw = loaded.get(c)
        if not isinstance(raw, _SealedToken):
            continue
        try:
            value = _decode(column, vault.open_value(raw.token, column.label, binding))
        except Shredded:
            value = SHREDDED_JSON if column.is_json or column.as_date else SHREDDED_TEXT
        set_committed_value(obj, c, value)


def _open_on_load(target: Any, _context: Any, *_attrs: Any) -> None:
    open_row(target)


_registered = threading.Lock()
_done: list[bool] = []


def _register_listeners() -> None:
    with _registered:
        if _done:
            return
        event.listen(OrmSession, "before_flush", _seal_on_flush)
        event.listen(OrmSession, "after_flush_postexec", _restore_after_flush)
        event.listen(OrmSession, "after_rollback", _forget_pending)
        event.listen(SQLModel, "load", _open_on_load, propagate=True)
        event.listen(SQLModel, "refresh", _open_on_load, propagate=True)
        _done.append(True)
