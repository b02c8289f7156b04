"""Plan: a request decided where the data lives (spec api.md, "v2: pushdown to SQL").

``policy.plan(partner, purpose, fields, at=...)`` folds everything known at planning time into
one neutral condition tree per field (``planner``); ``to_sql`` renders it for a dialect with
bound parameters (``render``); ``run`` executes it on a connection and returns exactly the rows
``filter`` gives for the same records, applying ``as pseudonym`` in Python after fetching.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import runtime as rt
from . import tree as t
from .errors import NotTranslatable
from .planner import FieldPlan, plan_fields
from .render import CONSENT, DIALECTS, STUDENT, ConsentTable, Output, Renderer

if TYPE_CHECKING:
    from ..exports.log import Export
    from ..policy import Policy

KINDS = ("all", "none", "conditional")
Columns = Mapping[str, str]
Consents = str | Mapping[str, Any] | ConsentTable | None


class Plan:
    """One request (partner, purpose, fields, decision day) as a query plan.

    ``kind`` is ``"none"`` when no row can receive any field, ``"all"`` when every requested field
    that can be released is released for every student whatever their data (rows still need a
    value to send), else ``"conditional"``.
    """

    def __init__(self, policy: Policy, partner: str, purpose: str, fields: tuple[str, ...],
                 day: datetime.date) -> None:
        self.policy = policy
        self.partner = partner
        self.purpose = purpose
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(fields))
        self.day = day
        self.field_plans: tuple[FieldPlan, ...] = plan_fields(policy, partner, purpose, fields, day)
        live = [fp for fp in self.field_plans if not fp.never]
        self.kind = "none" if not live else ("all" if all(fp.always for fp in live) else "conditional")

    def __repr__(self) -> str:
        return (f"<Plan {self.kind} partner={self.partner} purpose={self.purpose} day={self.day.isoformat()} "
                f"fields={len(self.fields)}>")

    @property
    def needs_consents(self) -> bool:
        """Whether the query reads the consent table."""
        return any(_has_consent(b.condition) for fp in self.field_plans if not fp.never for b in fp.branches)

    # -- SQL -------------------------------------------------------------------

    def _columns(self, columns: Columns | None) -> dict[str, str]:
        cat = self.policy.model.catalogue
        out = {ref: info.name for ref, info in cat.fields.items()}
        if columns is not None:
            if not isinstance(columns, Mapping):
                raise TypeError(f"columns must map field references to column names, not {type(columns).__name__}")
            for ref, name in columns.items():
                if ref not in cat.fields:
                    raise ValueError(f"columns names {ref!r}, which is not a field of the catalogue "
                                     "(use references such as 'leerling.roepnaam')")
                if type(name) is not str or not name:
                    raise ValueError(f"the column of {ref} must be a non-empty str, not {name!r}")
                out[ref] = name
        return out

    def _consents(self, consents: Consents, columns: dict[str, str]) -> ConsentTable:
        if consents is None:
            table = ConsentTable()
        elif isinstance(consents, ConsentTable):
            table = consents
        elif isinstance(consents, str):
            table = ConsentTable(table=consents)
        elif isinstance(consents, Mapping):
            unknown = set(consents) - {"table", "student", "topic", "party", "given", "withdrawn", "key"}
            if unknown:
                raise ValueError(f"consents takes table, student, topic, party, given, withdrawn and key, "
                                 f"not {sorted(unknown)}")
            table = ConsentTable(**consents)
        else:
            raise TypeError(f"consents must be a table name or a mapping, not {type(consents).__name__}")
        if table.key is None:
            cat = self.policy.model.catalogue
            key = getattr(cat, "key", None)
            if key is None and "id" in cat.subject_fields:
                key = "id"
            if key is not None:
                table = ConsentTable(table.table, table.student, table.topic, table.party, table.given,
                                     table.withdrawn, columns[f"{cat.subject}.{key}"])
        return table

    def _query(self, dialect: str, table: str | Sequence[str], columns: Columns | None, consents: Consents,
               inline: bool, labels: bool = False) -> tuple[str, dict[str, Any], list[Output]]:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
        renderer, query, outputs = self._render(dialect, table, columns, consents, inline, labels)
        return query.sql(dialect=dialect), renderer.params, outputs

    def _render(self, dialect: str, table: str | Sequence[str], columns: Columns | None, consents: Consents,
                inline: bool, labels: bool = False) -> tuple[Renderer, Any, list[Output]]:
        cols = self._columns(columns)
        types = {ref: info.type for ref, info in self.policy.model.catalogue.fields.items()}
        renderer = Renderer(dialect, cols, self._consents(consents, cols), inline, types)
        name = table if isinstance(table, str) else tuple(table)
        query, outputs = renderer.query(self.field_plans, name, labels)
        return renderer, query, outputs

    def to_sql(self, dialect: str = "duckdb", *, table: str | Sequence[str], columns: Columns | None = None,
               consents: Consents = None, inline: bool = False, labels: bool = False) -> tuple[str, dict[str, Any]]:
        """``(sql, params)``: the query for ``dialect`` with named parameters in the driver's style
        (``$p0`` for duckdb, ``:p0`` for sqlite and spark, ``%(p0)s`` for psycopg) and ``params`` the
        dict of their values. ``inline=True`` writes the values as SQL literals instead (for a
        ``CREATE VIEW``, which cannot take parameters); ``params`` is then empty.

        The query selects one column per field and transform (``c0``, ``c1``, ...; with ``labels=True``
        named ``leerling.roepnaam``, ``leerling.geboortedatum as year``); ``run`` turns them into
        ``filter``'s rows. A field released ``as pseudonym`` is selected as it is: only ``run`` applies
        the pseudonym (the key never reaches the database)."""
        sql, params, _ = self._query(dialect, table, columns, consents, inline, labels)
        return sql, params

    def refuse_pseudonyms(self) -> None:
        """NotTranslatable when a field may be released ``as pseudonym``: SQL that runs without ``run``
        (a view, a printed query) would send the value itself."""
        for fp in self.field_plans:
            if not fp.never and "pseudonym" in fp.transforms:
                rule = next(b.rule for b in fp.branches if b.transform == "pseudonym")
                raise NotTranslatable(rule, f"{fp.ref} as pseudonym",
                                      "the pseudonym key never reaches the database: use plan.run, which "
                                      "applies it in Python after fetching")

    def to_view(self, name: str, dialect: str = "duckdb", *, table: str | Sequence[str],
                columns: Columns | None = None, consents: Consents = None) -> str:
        """``CREATE VIEW name AS ...`` with the values written as literals and one column per field
        (named ``leerling.roepnaam``, ``leerling.geboortedatum as year``). The decision day is fixed in
        the view: re-create it every day. A field released ``as pseudonym`` cannot be in a view (the
        key never reaches the database): NotTranslatable."""
        from sqlglot import exp
        self.refuse_pseudonyms()
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
        cols = self._columns(columns)
        renderer = Renderer(dialect, cols, self._consents(consents, cols), inline=True)
        query, _ = renderer.query(self.field_plans, table if isinstance(table, str) else tuple(table), labels=True)
        create = exp.Create(this=exp.Table(this=renderer.ident(name)), kind="VIEW", expression=query)
        return create.sql(dialect=dialect)

    # -- running ---------------------------------------------------------------

    def run(self, connection: Any, *, table: str | Sequence[str], columns: Columns | None = None,
            consents: Consents = None, dialect: str | None = None, export: Export | None = None
            ) -> list[dict[str, Any]]:
        """Exactly the rows ``filter`` gives for the table's students: fields as requested, transforms
        applied, a row only for a student with at least one released value.

        ``export``: an open ``policy.export(...)`` for the same request and decision day (else
        ValueError). The query then also selects the student's key column, which the export records
        as ``export.rows`` does (a row whose key is NULL or unusable is withheld and counted in
        ``left_out``); the key is never added to a row the caller did not ask for it in.

        ``connection``: a duckdb or sqlite3 connection, a psycopg connection or a SparkSession
        (``dialect`` is worked out from it unless given). On DuckDB, PostgreSQL and Spark the types of
        the columns the query reads are checked first (``check_columns``: NotTranslatable for a column
        whose values the engines would call ill-typed); SQLite's query tests each value's type."""
        policy = self.policy
        if policy._pseudonymizer is None:
            needing = policy._needs_key(self.partner, self.purpose, self.fields)
            if needing:
                raise ValueError(f"{needing[0]} is permitted `as pseudonym` to {self.partner}: load the policy "
                                 "with pseudonym_key=... to filter it")
        key_ref = None if export is None else export._plan_key(self)  # ValueError before any query
        dialect = dialect or dialect_of(connection)
        if self.kind == "none":
            return []
        renderer, query, outputs = self._render(dialect, table, columns, consents, inline=False)
        name = table if isinstance(table, str) else tuple(table)
        check_columns(connection, renderer, name)
        if export is None:
            fetched = execute(connection, dialect, query.sql(dialect=dialect), renderer.params)
            return self._rows(fetched, outputs, dialect)
        assert key_ref is not None
        _select_key(query, renderer, self._columns(columns)[key_ref])
        fetched = execute(connection, dialect, query.sql(dialect=dialect), renderer.params)
        keys = [row[-1] for row in fetched]
        return export._plan_rows(self, keys, self._rows(fetched, outputs, dialect, aligned=True))

    def _rows(self, fetched: Any, outputs: list[Output], dialect: str,
              aligned: bool = False) -> list[dict[str, Any]]:
        """``filter``'s rows from the fetched tuples; ``aligned``: each tuple ends with the key column
        (not in the row) and there is one row per tuple, an empty dict for a tuple with nothing to
        send (so that the keys still match the rows)."""
        refs = [o.ref for o in outputs]
        converters: list[Any] = [None] * len(outputs)
        for i, o in enumerate(outputs):
            convert = None
            if dialect == "sqlite" and o.transform != "year":
                convert = _SQLITE.get(o.type)
            if o.transform == "pseudonym":
                pseudonym = self.policy._pseudonym_function(self.partner, o.ref)
                convert = pseudonym if convert is None else _chain(convert, pseudonym)
            converters[i] = convert
        if dialect != "spark" and len(set(refs)) == len(refs) and not any(converters):
            # one comprehension (the query keeps only rows with a value to send; ``if out`` is a guard)
            if aligned:  # zip stops before the key column
                return [{ref: v for ref, v in zip(refs, row, strict=False) if v is not None} for row in fetched]
            rows = ({ref: v for ref, v in zip(refs, row, strict=True) if v is not None} for row in fetched)
            return [out for out in rows if out]
        spec = list(zip(refs, converters, strict=True))
        result: list[dict[str, Any]] = []
        append = result.append
        for row in fetched:
            out = {}
            for (ref, convert), v in zip(spec, row, strict=not aligned):  # (aligned: the key is left out)
                if v is None or ref in out:
                    continue
                if convert is not None:
                    v = convert(v)
                    if v is None:
                        continue
                out[ref] = v
            if out or aligned:
                append(out)
        return result


def _select_key(query: Any, renderer: Renderer, column: str) -> None:
    """Add the student table's key ``column`` as the query's last column (for an export's record):
    in the query itself, or in its inner query and then the outer one when it has that shape."""
    from sqlglot import exp
    source = query.args.get("from_") or query.args.get("from")
    inner = source.this if source is not None else None
    if isinstance(inner, exp.Subquery) and isinstance(inner.this, exp.Select):
        alias = inner.alias
        inner.this.append("expressions", exp.Alias(this=renderer.raw(STUDENT, column), alias=renderer.ident("k")))
        query.append("expressions", renderer.raw(alias, "k"))
    else:
        query.append("expressions", exp.Alias(this=renderer.raw(STUDENT, column), alias=renderer.ident("k")))


def _chain(first: Any, second: Any) -> Any:
    return lambda v: second(first(v))


_SQLITE = {"date": datetime.date.fromisoformat, "bool": bool, "set": json.loads}


def _has_consent(node: t.Node) -> bool:
    if isinstance(node, t.ConsentValid):
        return True
    if isinstance(node, (t.And, t.Or)):
        return any(_has_consent(i) for i in node.items)
    if isinstance(node, (t.Not, t.Coalesce)):
        return _has_consent(node.operand)
    return False


#: the column types whose values the engines call well-typed, by dialect and catalogue type (SQLite has
#: none: its queries test every value's type instead). DuckDB and Spark by type name, psycopg by type OID.
COLUMN_TYPES: dict[str, dict[str, frozenset[Any]]] = {
    "duckdb": {"text": frozenset({"VARCHAR"}),
               "int": frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                                 "UINTEGER", "UBIGINT", "UHUGEINT"}),
               "bool": frozenset({"BOOLEAN"}), "date": frozenset({"DATE"}), "set": frozenset({"VARCHAR[]"})},
    "postgres": {"text": frozenset({25, 1043}), "int": frozenset({20, 21, 23}), "bool": frozenset({16}),
                 "date": frozenset({1082}), "set": frozenset({1009, 1015})},
    "spark": {"text": frozenset({"string"}), "int": frozenset({"tinyint", "smallint", "int", "bigint"}),
              "bool": frozenset({"boolean"}), "date": frozenset({"date"}), "set": frozenset({"array<string>"})},
}
_PG_NAMES = {25: "text", 1043: "varchar", 20: "bigint", 21: "smallint", 23: "integer", 16: "boolean", 1082: "date",
             1009: "text[]", 1015: "varchar[]"}


def check_columns(connection: Any, renderer: Renderer, table: str | tuple[str, ...]) -> None:
    """NotTranslatable unless every column the query reads has a type whose values the engines call
    well-typed (a VARCHAR ``leerjaar`` holding '5' would compare as 5 in SQL, while the engines call
    '5' ill-typed and deny). One ``SELECT ... LIMIT 0`` per table; SQLite is checked value by value
    in the query itself."""
    from sqlglot import exp
    dialect = renderer.dialect
    if dialect == "sqlite":
        return
    allowed = COLUMN_TYPES[dialect]
    consents = renderer.consents
    tables = [(STUDENT, table), (CONSENT, consents.table if consents is not None else None)]
    for alias, name in tables:
        read = renderer.read[alias]
        if not read or name is None:
            continue
        names = list(read)
        probe = exp.Select(expressions=[renderer.raw(alias, c) for c in names])
        probe = probe.from_(renderer.table(name, alias), copy=False)
        probe.set("limit", exp.Limit(expression=exp.Literal.number(0)))
        found = _column_types(connection, dialect, probe.sql(dialect=dialect))
        for column, found_type in zip(names, found, strict=True):
            want = read[column]
            if found_type not in allowed[want]:
                shown = _PG_NAMES.get(found_type, f"type OID {found_type}") if dialect == "postgres" \
                    else found_type
                raise NotTranslatable(None, f"column {column!r} of {_shown(name)} is {shown}",
                                      f"the policy reads it as {want}, and the engines would call some of its "
                                      f"values ill-typed; use a column of type {_wanted(dialect, want)}, "
                                      "or filter")


def _column_types(connection: Any, dialect: str, sql: str) -> list[Any]:
    if dialect == "spark":
        return [f.dataType.simpleString() for f in connection.sql(sql).schema.fields]
    if dialect == "duckdb":
        return [str(d[1]) for d in connection.execute(sql).description]
    cursor = connection.cursor()
    try:
        cursor.execute(sql, {})  # {}: psycopg reads the query's %% as the names' %, as in run's query
        return [d.type_code for d in cursor.description]
    finally:
        cursor.close()


def _shown(name: str | tuple[str, ...]) -> str:
    return ".".join((name,) if isinstance(name, str) else name)


def _wanted(dialect: str, type_: str) -> str:
    if dialect == "postgres":
        return " or ".join(_PG_NAMES[o] for o in sorted(COLUMN_TYPES[dialect][type_]))
    return " or ".join(sorted(COLUMN_TYPES[dialect][type_]))


def dialect_of(connection: Any) -> str:
    """The dialect of a connection: duckdb, sqlite3, psycopg or a SparkSession."""
    module = type(connection).__module__.split(".")[0]
    found = {"duckdb": "duckdb", "_duckdb": "duckdb", "sqlite3": "sqlite", "_sqlite3": "sqlite", "psycopg": "postgres",
             "pyspark": "spark"}.get(module)
    if found is None:
        raise TypeError(f"cannot tell the SQL dialect of a {type(connection).__name__} connection: pass "
                        f"dialect= (one of {DIALECTS})")
    return found


def execute(connection: Any, dialect: str, sql: str, params: dict[str, Any]) -> Any:
    """Run the query and return its rows (a sequence of tuples, or Spark Rows)."""
    if dialect == "spark":
        return connection.sql(sql, args=params).collect()
    if dialect in ("duckdb", "sqlite"):
        return connection.execute(sql, params).fetchall()
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def make_plan(policy: Policy, partner: str, purpose: str, fields: Sequence[str], at: Any) -> Plan:
    """``Policy.plan``: arguments checked exactly as ``filter`` checks them."""
    from ..policy import _check_moment, _check_request
    key = _check_request(partner, purpose, fields)
    _check_moment(at)
    check_names = getattr(policy, "check_names", None)
    if check_names is not None:  # an undeclared partner or purpose is an error, as for filter
        check_names(partner, purpose)
    day = rt.local_day(at, policy.zone)
    return Plan(policy, partner, purpose, key, day)
