"""The message path's own Core statements, compiled once and run on the DBAPI cursor.

A Core statement run through a `Connection` costs far more than the database's work on the
message path: SQLAlchemy generates the statement's cache key (a walk of the whole
statement) to find its compiled form, builds an execution context, dispatches events and
wraps the cursor in a result with its metadata, every time. Measured on the inline SQLite
engine: a member's look-up and the message's key, with BEGIN and COMMIT, 168 µs through a
`Connection` against 56 µs on the `sqlite3` cursor.

The statements the message path runs are constants of their modules, built once at import.
`planned(statement)` marks one; the first time it runs on a dialect (and, for an INSERT or
UPDATE, with a set of parameter names) SQLAlchemy compiles it, and the plan keeps what
SQLAlchemy's own execution would do with the compiled form: the SQL, the order of its
positional parameters, each parameter's type processing, each result column's. Then a run
is those steps and the cursor. Errors still go through the connection's own handling (the
same `IntegrityError`, a lost connection invalidated the same way).

What a plan cannot do exactly as SQLAlchemy does goes through the connection as before:
a statement that is not marked, several parameter sets (executemany), expanding or
literal-execute parameters (`IN` lists), Python-side column defaults, a dialect with named
parameters, and any connection with event listeners or echo on (a statement counter or a
log sees every statement).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler

E = TypeVar("E", bound=Executable)

Processor = Callable[[Any], Any] | None

# id(statement) → (the statement, its plans): the statement is held, so its id stays its own.
_marked: dict[int, tuple[Executable, dict[Any, Plan | None]]] = {}


def planned(statement: E) -> E:
    """Mark a module-level statement to run with a plan (only constants: every marked
    statement is kept for the life of the process)."""
    _marked[id(statement)] = (statement, {})
    return statement


@dataclass(slots=True)
class Plan:
    """What running one compiled statement on the DBAPI takes."""

    sql: str
    # Each positional parameter in order: the key it is given by, whether it must be given,
    # its own value (a literal's), its type's processing.
    inputs: tuple[tuple[str, bool, Any, Processor], ...]
    compiled: SQLCompiler
    row: type[tuple[Any, ...]]  # named by the result columns' keys
    types: tuple[Any, ...]
    result_processors: list[Processor] | None = field(default=None)


@dataclass(slots=True)
class Fetched:
    """A statement's rows, fetched at once: the parts of SQLAlchemy's `Result` the data
    layer uses (first, one, all, the scalars, rowcount)."""

    rows: list[Any]
    rowcount: int

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def all(self) -> list[Any]:
        return list(self.rows)

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if not self.rows:
            raise NoResultFound("No row was found when one was required")
        if len(self.rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self.rows[0]

    def one_or_none(self) -> Any:
        return self.one() if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> Fetched:
        """The first column's values, read as rows (`Result.scalars()`)."""
        return Fetched([row[0] for row in self.rows], self.rowcount)


def execute(
    connection: Connection,
    statement: Executable,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
) -> Any:
    """Run `statement` in `connection`'s transaction: with its plan when it has one (a
    `Fetched`), else through the connection (SQLAlchemy's `Result`)."""
    marked = _marked.get(id(statement))
    if (
        marked is None
        or not (params is None or isinstance(params, Mapping))
        or connection._has_events
        or connection.engine._has_events
        or connection._echo
    ):
        return connection.execute(statement, params)  # type: ignore[arg-type]
    values = params or {}
    plan = _plan_for(connection, statement, marked[1], values)
    if plan is None:
        return connection.execute(statement, params)  # type: ignore[arg-type]
    return _run(connection, plan, values)


def _plan_for(
    connection: Connection,
    statement: Executable,
    plans: dict[Any, Plan | None],
    values: Mapping[str, Any],
) -> Plan | None:
    dialect = connection.dialect
    key = (dialect, frozenset(values))
    try:
        return plans[key]
    except KeyError:
        pass
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(values))
    plan = None
    if (
        compiled.positional
        and not compiled.insert_prefetch
        and not compiled.update_prefetch
        and not compiled.literal_execute_params
        and not compiled.post_compile_params
        and not compiled.schema_translate_map
        and not compiled._textual_ordered_columns
        and not compiled._collected_params  # values given with `.params()`
        and not any(bind.callable for bind in compiled.bind_names)
    ):
        columns = compiled._result_columns
        keys = [column.keyname for column in columns]
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        processors = compiled._bind_processors
        plan = Plan(
            sql=compiled.string,
            inputs=tuple(
                (bind.key, bind.required, bind.value, processors.get(name))
                for name, bind in ((name, binds[name]) for name in compiled.positiontup)
            ),
            compiled=compiled,
            row=collections.namedtuple("Row", keys, rename=True),  # type: ignore[misc]
            types=tuple(column.type for column in columns),
        )
    plans[key] = plan
    return plan


def _run(connection: Connection, plan: Plan, values: Mapping[str, Any]) -> Fetched:
    dialect = connection.dialect
    # What `construct_params` and SQLAlchemy's execution context make of the values, without
    # a dictionary of every parameter in between.
    given: list[Any] = []
    for key, required, own, process in plan.inputs:
        if key in values:
            value = values[key]
        elif required:
            plan.compiled.construct_params(values)  # raises SQLAlchemy's "a value is required"
            raise AssertionError(key)
        else:
            value = own
        given.append(value if process is None else process(value))
    parameters = dialect.execute_sequence_format(given)
    dbapi_connection: Any = connection.connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(plan.sql, parameters)
        rows: list[Any] = []
        if cursor.description is not None:
            fetched = cursor.fetchall()
            result_processors = plan.result_processors
            if result_processors is None:
                result_processors = plan.result_processors = [
                    type_._cached_result_processor(dialect, described[1])
                    for type_, described in zip(plan.types, cursor.description, strict=True)
                ]
            make = plan.row._make  # type: ignore[attr-defined]
            if any(result_processors):
                rows = [
                    make(
                        value if process is None else process(value)
                        for process, value in zip(result_processors, row, strict=True)
                    )
                    for row in fetched
                ]
            else:
                rows = [make(row) for row in fetched]
        rowcount = cursor.rowcount
    except Exception as error:
        connection._handle_dbapi_exception(error, plan.sql, parameters, cursor, None)
    finally:
        cursor.close()
    return Fetched(rows, rowcount)
