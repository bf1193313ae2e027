"""A turn's writes, compiled once and run on the driver's cursor (SQLite).

Every turn writes the same few statements (the session row's guarded update, its run row,
its entries, events and ledger rows). Through ``Connection.execute`` each one costs SQLAlchemy
~35 us of Python on the store's thread even when it was built once (an execution context,
events, a result object) against ~5 us for the driver, and that Python holds the GIL the event
loop needs. :func:`execute` compiles a statement once per set of parameter names and runs it
on the connection's own ``sqlite3`` cursor, with SQLAlchemy's own bind processors (so a value
is stored exactly as ``Connection.execute`` would store it), inside the caller's transaction.

Anything it does not handle the same way (another backend, a statement that returns rows,
a column whose value comes from a Python-side default, an expanding parameter) goes through
``Connection.execute`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

__all__ = ["execute"]

Parameters = dict[str, Any] | Sequence[dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    #: Per position: the parameter's name, or ``None`` with the value the statement holds.
    names: tuple[str | None, ...]
    constants: tuple[Any, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def row(self, params: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, constant, process in zip(
            self.names, self.constants, self.processors, strict=True
        ):
            value = constant if name is None else params[name]
            values.append(value if process is None else process(value))
        return tuple(values)


# Keyed by the statement itself (held, so its id is never reused), and bounded: only a
# statement built once belongs here, but a caller that builds one per call must not grow it.
_compiled: dict[tuple[Any, tuple[str, ...]], _Compiled | None] = {}
_MAX_COMPILED = 1024


def execute(conn: sa.Connection, statement: sa.Executable, params: Parameters = None) -> int:
    """Run the INSERT, UPDATE or DELETE ``statement`` with ``params`` (one dict, or a list for
    many rows) in ``conn``'s transaction; returns the driver's row count.

    ``statement`` should be built once (a module constant, or cached): compiled forms are
    kept per statement object.
    """
    if params is None or conn.dialect.name != "sqlite":
        return conn.execute(statement, params).rowcount
    many = not isinstance(params, dict)
    rows: Sequence[dict[str, Any]] = params if many else [params]  # type: ignore[assignment]
    if not rows:
        return 0
    keys = tuple(sorted(rows[0]))
    cache_key = (statement, keys)
    try:
        compiled = _compiled[cache_key]
    except KeyError:
        if len(_compiled) >= _MAX_COMPILED:
            _compiled.clear()
        compiled = _compiled[cache_key] = _compile(conn.dialect, statement, keys)
    if compiled is None or any(tuple(sorted(row)) != keys for row in rows[1:]):
        return conn.execute(statement, params).rowcount
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(compiled.sql, [compiled.row(row) for row in rows])
        else:
            cursor.execute(compiled.sql, compiled.row(rows[0]))
        return cursor.rowcount
    finally:
        cursor.close()


def _compile(dialect: sa.Dialect, statement: Any, keys: tuple[str, ...]) -> _Compiled | None:
    """The statement's SQL and how to build its positional parameters, or ``None`` when it
    needs what only ``Connection.execute`` does."""
    if not isinstance(statement, sa.Insert | sa.Update | sa.Delete) or statement._returning:
        return None
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    if (
        compiled.insert_prefetch
        or compiled.update_prefetch
        or compiled.postfetch
        or compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.escaped_bind_names
        or compiled.positiontup is None
    ):
        return None
    processors = compiled._bind_processors
    names: list[str | None] = []
    constants: list[Any] = []
    process: list[Callable[[Any], Any] | None] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        if bind.expanding or bind.callable is not None:
            return None
        if name in keys:
            names.append(name)
            constants.append(None)
        elif bind.required:
            return None
        else:
            names.append(None)
            constants.append(bind.value)
        process.append(processors.get(name))
    return _Compiled(compiled.string, tuple(names), tuple(constants), tuple(process))
