"""Dialects: the neutral tree of a plan turned into SQL with ``sqlglot``'s expression builders.

Nothing here parses text into SQL: identifiers are ``exp.Identifier(quoted=True)`` nodes, values
are placeholders whose values go to the driver (or, for ``inline=True``, literals built by
``exp.Literal``/``exp.Cast``, which sqlglot quotes). Each dialect differs only in a few places:
placeholders, how a column proves it holds a well-typed value (SQLite has no column types), date
parts, and text ordering (PostgreSQL compares text with ``COLLATE "C"``: code-point order, as
Python does).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from typing import Any

import attrs
from sqlglot import exp

from ..runtime import AGE_OF_CONSENT
from . import tree as t
from .planner import FieldPlan

DIALECTS = ("duckdb", "sqlite", "postgres", "spark")
STUDENT = "s"   # alias of the student table
CONSENT = "c"   # alias of the consent table
INNER = "q"     # alias of the per-row subquery
ELEMENT = "e"   # alias of json_each over a SQLite set column


@attrs.frozen
class ConsentTable:
    """Where consents live: one row per student, topic and party (``given``/``withdrawn`` dates)."""

    table: str | tuple[str, ...] = "consents"
    student: str = "student"
    topic: str = "topic"
    party: str = "party"
    given: str = "given"
    withdrawn: str = "withdrawn"
    key: str | None = None   # the student table's key column (default: the catalogue's key field)


@attrs.frozen
class Output:
    """One selected column of the query: the value of ``ref`` released with ``transform``."""

    ref: str
    transform: str | None
    type: str


class Renderer:
    def __init__(self, dialect: str, columns: Mapping[str, str], consents: ConsentTable | None,
                 inline: bool, types: Mapping[str, str] | None = None) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, not {dialect!r}")
        self.dialect = dialect
        self.columns = columns
        self.types = types or {}  # field reference -> catalogue type
        self.consents = consents
        self.inline = inline
        self.params: dict[str, Any] = {}
        #: the columns the query reads, by table alias: column name -> catalogue type (``run`` checks them)
        self.read: dict[str, dict[str, str]] = {STUDENT: {}, CONSENT: {}}
        self._names: dict[tuple[type, Any], str] = {}
        self.typed = dialect != "sqlite"

    # -- names and values --------------------------------------------------------

    def ident(self, name: str) -> exp.Identifier:
        if type(name) is not str or not name:
            raise ValueError(f"a table or column name must be a non-empty str, not {name!r}")
        if "\x00" in name:
            raise ValueError("a table or column name cannot contain NUL")
        if self.dialect == "postgres" and not self.inline:
            name = name.replace("%", "%%")  # psycopg reads % in the query text as a placeholder
        return exp.Identifier(this=name, quoted=True)

    def table(self, name: str | tuple[str, ...], alias: str) -> exp.Table:
        parts = (name,) if isinstance(name, str) else tuple(name)
        if not 1 <= len(parts) <= 3:
            raise ValueError(f"a table is a name or (schema, name) or (catalog, schema, name), not {name!r}")
        idents = [self.ident(p) for p in parts]
        kwargs: dict[str, Any] = {"this": idents[-1]}
        if len(idents) >= 2:
            kwargs["db"] = idents[-2]
        if len(idents) == 3:
            kwargs["catalog"] = idents[0]
        return exp.Table(**kwargs, alias=exp.TableAlias(this=self.ident(alias)))

    def raw(self, alias: str, column: str) -> exp.Column:
        return exp.Column(this=self.ident(column), table=self.ident(alias))

    def column(self, c: t.Column) -> exp.Column:
        name = self.columns[c.ref]
        self.read[STUDENT][name] = c.type
        return self.raw(STUDENT, name)

    def param(self, value: Any, type_: str) -> exp.Expression:
        if self.dialect == "sqlite":
            if type_ == "date":
                value = value.isoformat()
            elif type_ == "bool":
                value = int(value)
        if self.inline:
            return literal(value, type_ if self.dialect != "sqlite" or type_ not in ("date", "bool") else "raw",
                           self.dialect)
        key = (type(value), value)
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = f"p{len(self.params)}"
            self.params[name] = value
        return exp.Placeholder(this=name)  # named: a copied subtree reuses its parameters

    def known(self, col: exp.Expression, type_: str) -> exp.Expression:
        """TRUE where ``col`` holds a well-typed value, else FALSE (never NULL)."""
        if type_ == "set":
            return self.known_set(col)
        if self.typed:
            return exp.Not(this=exp.Is(this=col.copy(), expression=exp.Null()))
        typeof = exp.Anonymous(this="typeof", expressions=[col.copy()])

        def is_(kind: str) -> exp.Expression:
            return exp.EQ(this=typeof.copy(), expression=exp.Literal.string(kind))
        if type_ == "text":
            return is_("text")
        if type_ == "int":
            return is_("integer")
        if type_ == "bool":
            return _and(is_("integer"), exp.In(this=col.copy(), expressions=[exp.Literal.number(0),
                                                                               exp.Literal.number(1)]))
        if type_ == "date":
            # date(x, '+0 days') normalises ('2016-02-30' -> '2016-03-01'); equal to x only for a real date
            normal = exp.Anonymous(this="date", expressions=[col.copy(), exp.Literal.string("+0 days")])
            same = exp.EQ(this=normal, expression=col.copy())
            return _and(is_("text"), exp.Coalesce(this=same, expressions=[exp.false()]),
                        exp.GTE(this=col.copy(), expression=exp.Literal.string("0001-01-01")))
        return exp.false()

    def known_set(self, col: exp.Expression) -> exp.Expression:
        """TRUE where a set column holds a set of text: not NULL and no NULL element (an element that
        is not text makes a set ill-typed, as ``runtime.is_str_set``), else FALSE (never NULL).

        DuckDB: a ``VARCHAR[]`` column; PostgreSQL: ``text[]`` (one dimension; ``'{}'`` has none);
        Spark: ``array<string>``; SQLite: text holding a JSON array whose elements are all strings."""
        not_null = exp.Not(this=exp.Is(this=col.copy(), expression=exp.Null()))
        if self.dialect == "duckdb":  # list_count counts the non-NULL elements (in every DuckDB version)
            same = exp.EQ(this=_fn("list_count", col.copy()), expression=_fn("array_length", col.copy()))
            return _and(not_null, exp.Coalesce(this=same, expressions=[exp.false()]))
        if self.dialect == "spark":
            same = exp.EQ(this=_fn("size", col.copy()), expression=_fn("size", _fn("array_compact", col.copy())))
            return _and(not_null, exp.Coalesce(this=same, expressions=[exp.false()]))
        if self.dialect == "postgres":
            dims = _fn("array_ndims", col.copy())
            return exp.Case(ifs=[exp.If(this=exp.Is(this=col.copy(), expression=exp.Null()), true=exp.false()),
                                 exp.If(this=exp.Is(this=dims, expression=exp.Null()), true=exp.true()),
                                 exp.If(this=exp.EQ(this=dims.copy(), expression=exp.Literal.number(1)),
                                        true=exp.Is(this=_fn("array_position", col.copy(), exp.Null()),
                                                    expression=exp.Null()))],
                            default=exp.false())
        # sqlite: json_each reads only valid JSON; the CASE keeps it from ever seeing anything else
        is_text = exp.EQ(this=_fn("typeof", col.copy()), expression=exp.Literal.string("text"))
        array = exp.EQ(this=_fn("json_type", col.copy()), expression=exp.Literal.string("array"))
        other = exp.NEQ(this=self.raw(ELEMENT, "type"), expression=exp.Literal.string("text"))
        all_text = exp.Not(this=exp.Exists(this=self._elements(col, other)))
        return exp.Case(ifs=[exp.If(this=_and(is_text, _fn("json_valid", col.copy())),
                                    true=_and(array, all_text))], default=exp.false())

    def _elements(self, col: exp.Expression, where: exp.Expression) -> exp.Select:
        """SQLite: ``SELECT 1 FROM json_each(col) AS e WHERE ...`` (the elements of a JSON array)."""
        source = exp.Table(this=_fn("json_each", col.copy()), alias=exp.TableAlias(this=self.ident(ELEMENT)))
        sub = exp.Select(expressions=[exp.Literal.number(1)])
        return sub.from_(source, copy=False).where(where, copy=False)

    def member(self, node: t.Member, positive: bool | None = None) -> exp.Expression:
        """``element in container``: TRUE/FALSE where both are well-typed, else NULL (``positive``: else
        FALSE, or TRUE when False; see ``cond``)."""
        container = self.column(node.container)
        element = self.operand(node.element)
        if self.dialect == "duckdb":
            test: exp.Expression = _fn("list_contains", container.copy(), element)
        elif self.dialect == "spark":
            test = _fn("array_contains", container.copy(), element)
        elif self.dialect == "postgres":
            test = exp.EQ(this=element, expression=exp.Any(this=exp.Paren(this=container.copy())))
        else:
            same = exp.EQ(this=self.raw(ELEMENT, "value"), expression=element)
            test = exp.Exists(this=self._elements(container, same))
        guard = self.known(container, "set")
        if isinstance(node.element, t.Column):
            guard = _and(guard, self.known(self.column(node.element), node.element.type))
        if positive is None or self.dialect == "sqlite":  # SQLite: json_each must never see malformed JSON
            otherwise = exp.Null() if positive is None else (exp.false() if positive else exp.true())
            return exp.Case(ifs=[exp.If(this=guard, true=test)], default=otherwise)
        return _and(guard, test) if positive else _or(exp.Not(this=exp.Paren(this=guard)), test)

    def value(self, col: exp.Expression, type_: str) -> exp.Expression:
        """The column's value where well-typed, else NULL."""
        if self.typed and type_ != "set":
            return col
        return exp.Case(ifs=[exp.If(this=self.known(col, type_), true=col.copy())])

    def date_part(self, part: str, col: exp.Expression) -> exp.Expression:
        """YEAR/MONTH/DAY of a date as an integer."""
        if self.dialect == "sqlite":
            start, length = {"YEAR": (1, 4), "MONTH": (6, 2), "DAY": (9, 2)}[part]
            text = exp.Anonymous(this="substr", expressions=[col, exp.Literal.number(start),
                                                             exp.Literal.number(length)])
            return exp.Cast(this=text, to=exp.DataType(this=exp.DataType.Type.BIGINT))
        node = {"YEAR": exp.Year, "MONTH": exp.Month, "DAY": exp.Day}[part](this=col)
        return exp.Cast(this=node, to=exp.DataType(this=exp.DataType.Type.BIGINT))

    def age(self, birth: exp.Expression, on: exp.Expression | datetime.date) -> exp.Expression:
        """Whole years from ``birth`` to ``on`` (29 February counts from 1 March): NULL when either is."""
        if isinstance(on, datetime.date):
            year: exp.Expression = self.param(on.year, "int")
            md: exp.Expression = self.param(on.month * 100 + on.day, "int")
        else:
            year = self.date_part("YEAR", on)
            md = _md(self, on)
        earlier = exp.Case(ifs=[exp.If(this=exp.LT(this=md, expression=_md(self, birth.copy())),
                                       true=exp.Literal.number(1))], default=exp.Literal.number(0))
        return exp.Sub(this=exp.Sub(this=year, expression=self.date_part("YEAR", birth)), expression=earlier)

    # -- conditions --------------------------------------------------------------

    def cond(self, node: t.Node, positive: bool | None = True) -> exp.Expression:
        """The condition as SQL. Every caller asks only whether it is TRUE (WHERE, CASE WHEN), so where
        ``positive`` is True (under an even number of NOTs) unknown may be rendered as FALSE, and where it
        is False as TRUE: "is TRUE" of the whole is the same (Kleene AND/OR are monotone). This drops the
        ``COALESCE`` of permits and forbids and the ``CASE`` around set membership, which the databases
        evaluate more slowly. ``positive=None``: the exact three-valued value (inside a ``COALESCE``)."""
        if isinstance(node, t.Const):
            return exp.Null() if node.value is None else (exp.true() if node.value else exp.false())
        if isinstance(node, t.Known):
            return self.known(self.column(node.column), node.column.type)
        if isinstance(node, t.Cmp):
            left, right = self.operand(node.left), self.operand(node.right)
            if self.dialect == "postgres" and node.op not in ("==", "!=") and _type(node.left) == "text":
                left = exp.Collate(this=left, expression=exp.Identifier(this="C", quoted=True))
            cls = {"==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}[node.op]
            return cls(this=left, expression=right)
        if isinstance(node, t.In):
            return exp.In(this=self.operand(node.operand), expressions=[self.operand(v) for v in node.values])
        if isinstance(node, t.Member):
            return self.member(node, positive)
        if isinstance(node, t.And):
            return _and(*(self.cond(i, positive) for i in node.items))
        if isinstance(node, t.Or):
            return _or(*(self.cond(i, positive) for i in node.items))
        if isinstance(node, t.Not):
            return exp.Not(this=exp.Paren(this=self.cond(node.operand, None if positive is None else not positive)))
        if isinstance(node, t.Coalesce):
            if positive is not None and node.default != positive:  # unknown as FALSE where positive, TRUE where not
                return self.cond(node.operand, positive)
            return exp.Coalesce(this=self.cond(node.operand, None),
                                expressions=[exp.true() if node.default else exp.false()])
        if isinstance(node, t.ConsentValid):
            return self.consent(node)
        if isinstance(node, t.NotLeft):
            col = self.column(node.column)
            not_left = exp.GTE(this=self.value(col, node.column.type), expression=self.param(node.day, "date"))
            return exp.Case(ifs=[exp.If(this=exp.Is(this=col.copy(), expression=exp.Null()), true=exp.true())],
                            default=not_left)
        raise TypeError(f"not a plan condition: {type(node).__name__}")

    def operand(self, op: t.Operand) -> exp.Expression:
        if isinstance(op, t.Param):
            return self.param(op.value, op.type)
        if isinstance(op, t.Column):
            return self.value(self.column(op), op.type)
        if isinstance(op, t.AgeOf):
            return self.age(self.value(self.column(op.birth), "date"), op.day)
        raise TypeError(f"not an operand: {type(op).__name__}")

    def consent(self, node: t.ConsentValid) -> exp.Expression:
        """Valid consent (spec section 4 on dates): a row for the student and topic that is valid,
        and no row for them that is not (several rows never widen what one would give)."""
        ct = self.consents
        if ct is None:
            raise ValueError(f"rule {node.rule} needs consent for topic {node.topic}: pass consents=... "
                             "(the consent table and its columns)")
        if ct.key is None:
            raise ValueError("the consent table needs the student key: pass consents={'key': COLUMN} "
                             "(the column of the student table that identifies a student)")
        day = node.day
        key_type = next((self.types[ref] for ref, name in self.columns.items()
                         if name == ct.key and ref in self.types), None)
        self.read[CONSENT].update({ct.topic: "text", ct.party: "text", ct.given: "date", ct.withdrawn: "date"})
        if key_type is not None:
            self.read[CONSENT][ct.student] = self.read[STUDENT][ct.key] = key_type
        birth = self.value(self.column(node.birth), "date")
        given = self.value(self.raw(CONSENT, ct.given), "date")
        withdrawn_raw = self.raw(CONSENT, ct.withdrawn)
        withdrawn = self.value(withdrawn_raw, "date")
        party = self.value(self.raw(CONSENT, ct.party), "text")
        age_at_given = self.age(birth, given)
        parent = [exp.EQ(this=party.copy(), expression=self.param("parent", "text")),
                  exp.LT(this=age_at_given, expression=self.param(AGE_OF_CONSENT, "int"))]
        if node.reconfirm_at_16:
            bound = t.birthday_bound(day, AGE_OF_CONSENT)
            assert bound is not None
            parent.append(exp.GT(this=birth.copy(), expression=self.param(bound, "date")))
        student = [exp.EQ(this=party.copy(), expression=self.param("student", "text")),
                   exp.GTE(this=self.age(birth.copy(), given.copy()), expression=self.param(AGE_OF_CONSENT, "int"))]
        valid = _and(exp.LTE(this=given.copy(), expression=self.param(day, "date")),
                     _or(exp.Is(this=withdrawn_raw.copy(), expression=exp.Null()),
                         exp.GT(this=withdrawn, expression=self.param(day, "date"))),
                     exp.Not(this=exp.Is(this=birth.copy(), expression=exp.Null())),
                     _or(_and(*parent), _and(*student)))

        def rows(extra: exp.Expression) -> exp.Exists:
            where = _and(exp.EQ(this=self.raw(CONSENT, ct.student), expression=self.raw(STUDENT, ct.key)),
                         exp.EQ(this=self.raw(CONSENT, ct.topic), expression=self.param(node.topic, "text")),
                         extra)
            sub = exp.Select(expressions=[exp.Literal.number(1)])
            sub = sub.from_(self.table(ct.table, CONSENT), copy=False).where(where, copy=False)
            return exp.Exists(this=sub)
        some_valid = rows(valid)
        none_invalid = exp.Not(this=rows(exp.Not(this=exp.Paren(
            this=exp.Coalesce(this=valid.copy(), expressions=[exp.false()])))))
        return _and(some_valid, none_invalid)

    # -- the query ---------------------------------------------------------------

    def outputs(self, fp: FieldPlan) -> list[tuple[Output, exp.Expression]]:
        """The selected columns of one field: one per transform its permits apply."""
        if fp.never:
            return []
        assert fp.column is not None
        col = self.column(fp.column)
        out = []
        for kind in fp.transforms:
            val = self.value(col.copy(), fp.column.type)
            if kind == "year":
                val = self.date_part("YEAR", val)
            if fp.always:
                expr = val
            else:
                ifs = []
                if fp.blocked != t.FALSE:
                    ifs.append(exp.If(this=self.cond(fp.blocked), true=exp.Null()))
                for b in fp.branches:
                    ifs.append(exp.If(this=self.cond(b.condition),
                                      true=val.copy() if b.transform == kind else exp.Null()))
                expr = exp.Case(ifs=ifs)
            type_ = "int" if kind == "year" else fp.column.type
            out.append((Output(fp.ref, kind, type_), expr))
        return out

    def query(self, fields: tuple[FieldPlan, ...], table: str | tuple[str, ...],
              labels: bool = False) -> tuple[exp.Select, list[Output]]:
        """The query; ``labels`` names its columns after the fields (``leerling.geboortedatum as year``)
        instead of ``c0``, ``c1``, ... (for a view)."""
        live = [fp for fp in fields if not fp.never]
        shape = {(fp.blocked, tuple(b.condition for b in fp.branches)) for fp in live}
        if len(shape) == 1 and not all(fp.always for fp in live):
            return self._shared(live, table, labels)
        selected: list[tuple[Output, exp.Expression]] = []
        for fp in fields:
            selected += self.outputs(fp)
        source = self.table(table, STUDENT)
        if not selected:
            q = exp.Select(expressions=[exp.Alias(this=exp.Null(), alias=self.ident("c0"))])
            return q.from_(source, copy=False).where(exp.false(), copy=False), []
        names = [f"c{i}" for i in range(len(selected))]
        inner = exp.Select(expressions=[exp.Alias(this=e, alias=self.ident(name))
                                        for name, (_, e) in zip(names, selected, strict=True)])
        inner = inner.from_(source, copy=False)
        subquery = exp.Subquery(this=inner, alias=exp.TableAlias(this=self.ident(INNER)))
        outs = [o for o, _ in selected]
        columns: list[exp.Expression] = [self.raw(INNER, name) for name in names]
        if labels:
            columns = [exp.Alias(this=c, alias=self.ident(o.ref + (f" as {o.transform}" if o.transform else "")))
                       for c, o in zip(columns, outs, strict=True)]
        outer = exp.Select(expressions=columns).from_(subquery, copy=False)
        present = _or(*(exp.Not(this=exp.Is(this=self.raw(INNER, name), expression=exp.Null())) for name in names))
        return outer.where(present, copy=False), outs


    def _shared(self, live: list[FieldPlan], table: str | tuple[str, ...],
                labels: bool) -> tuple[exp.Select, list[Output]]:
        """The common case: every released field hangs on the same forbids and permits, so the row
        condition is evaluated once, in WHERE, and the fields are selected as they are."""
        first = live[0]
        allowed = t.and_(t.not_(first.blocked), t.or_(*(b.condition for b in first.branches)))
        columns: list[exp.Expression] = []
        outs: list[Output] = []
        present = []
        for fp in live:
            assert fp.column is not None
            col = self.column(fp.column)
            present.append(self.known(col.copy(), fp.column.type))
            for kind in fp.transforms:
                val = self.value(col.copy(), fp.column.type)
                if kind == "year":
                    val = self.date_part("YEAR", val)
                expr: exp.Expression = val
                if len(fp.transforms) > 1:  # the first permit that holds picks the transform
                    expr = exp.Case(ifs=[exp.If(this=self.cond(b.condition),
                                                true=val.copy() if b.transform == kind else exp.Null())
                                         for b in fp.branches])
                out = Output(fp.ref, kind, "int" if kind == "year" else fp.column.type)
                name = out.ref + (f" as {kind}" if kind else "") if labels else f"c{len(columns)}"
                columns.append(exp.Alias(this=expr, alias=self.ident(name)))
                outs.append(out)
        where = _and(self.cond(allowed), _or(*present))
        query = exp.Select(expressions=columns).from_(self.table(table, STUDENT), copy=False)
        return query.where(where, copy=False), outs


def _type(op: t.Operand) -> str:
    if isinstance(op, t.Column):
        return op.type
    if isinstance(op, t.Param):
        return op.type
    return "int"


def _md(r: Renderer, col: exp.Expression) -> exp.Expression:
    """month * 100 + day of a date."""
    return exp.Add(this=exp.Mul(this=r.date_part("MONTH", col), expression=exp.Literal.number(100)),
                   expression=r.date_part("DAY", col.copy()))


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    """A function call by name (``list_contains``, ``json_each``, ...)."""
    return exp.Anonymous(this=name, expressions=list(args))


def _and(*items: exp.Expression) -> exp.Expression:
    return functools.reduce(lambda a, b: exp.And(this=a, expression=b), (exp.Paren(this=i) for i in items))


def _or(*items: exp.Expression) -> exp.Expression:
    return functools.reduce(lambda a, b: exp.Or(this=a, expression=b), (exp.Paren(this=i) for i in items))


def literal(value: Any, type_: str, dialect: str) -> exp.Expression:
    """A value as a SQL literal node (for ``inline=True``: views cannot take parameters)."""
    if type_ == "raw":
        return exp.Literal.string(value) if isinstance(value, str) else exp.Literal.number(value)
    if type_ == "text":
        return exp.Literal.string(value)
    if type_ == "bool":
        return exp.true() if value else exp.false()
    if type_ == "int":
        return exp.Literal.number(int(value))
    if type_ == "date":
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType(this=exp.DataType.Type.DATE))
    raise TypeError(f"no literal for type {type_}")
