"""Python source text of generated code, for display: ``check.source`` and tracebacks (linecache).

``unparse(tree)`` means the same as ``ast.unparse(tree)`` (``ast.parse`` of either gives the same tree;
tests/test_compile_cost.py holds them to it) in a fifth of the time: it knows the few node types the
compiler generates and hands any other node to ``ast.unparse``. Every value is written with ``repr``.
The text is never run: the compiler compiles the tree itself. Issue 15 item 4: ``ast.unparse`` was
the largest part of generating an epoch's code.
"""

from __future__ import annotations

import ast
from typing import Any

_CMP: dict[type, str] = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
                         ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
#: binary operators: (text, precedence); comparisons are 5, ``not`` 4, ``and`` 3, ``or`` 2, ``x if c else y`` 1
_BIN: dict[type, tuple[str, int]] = {ast.Add: ("+", 11), ast.Sub: ("-", 11), ast.BitOr: ("|", 6),
                                     ast.BitAnd: ("&", 8), ast.LShift: ("<<", 10), ast.RShift: (">>", 10),
                                     ast.Mult: ("*", 12)}
_ATOM = 20


def _expr(node: Any, parent: int = -1) -> str:
    """An expression; in parentheses when its precedence is at most ``parent``'s (-1: not nested)."""
    kind = type(node)
    if kind is ast.Name:
        return node.id
    if kind is ast.Constant:
        return repr(node.value)
    if kind is ast.Call:
        if node.keywords:
            return _fallback(node, parent)
        return f"{_expr(node.func, _ATOM)}({', '.join(_expr(a) for a in node.args)})"
    if kind is ast.Compare:
        text = " ".join([_expr(node.left, 5), *(f"{_CMP[type(op)]} {_expr(c, 5)}"
                                               for op, c in zip(node.ops, node.comparators, strict=True))])
        prec = 5
    elif kind is ast.BoolOp:
        prec = 3 if type(node.op) is ast.And else 2
        text = (" and " if prec == 3 else " or ").join(_expr(v, prec) for v in node.values)
    elif kind is ast.UnaryOp and type(node.op) is ast.Not:
        prec = 4
        text = f"not {_expr(node.operand, 3)}"
    elif kind is ast.NamedExpr:
        return f"({node.target.id} := {_expr(node.value, 0)})"
    elif kind is ast.Attribute:
        base = _expr(node.value, _ATOM)
        return f"({base}).{node.attr}" if type(node.value) is ast.Constant else f"{base}.{node.attr}"
    elif kind is ast.Subscript:
        return f"{_expr(node.value, _ATOM)}[{_expr(node.slice)}]"
    elif kind is ast.Tuple:
        items = [_expr(e) for e in node.elts]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    elif kind is ast.IfExp:
        prec = 1
        text = f"{_expr(node.body, 1)} if {_expr(node.test, 1)} else {_expr(node.orelse, 0)}"
    elif kind is ast.BinOp and type(node.op) in _BIN:
        op, prec = _BIN[type(node.op)]
        text = f"{_expr(node.left, prec - 1)} {op} {_expr(node.right, prec)}"
    elif kind is ast.Dict and not node.keys:
        return "{}"
    else:
        return _fallback(node, parent)
    return f"({text})" if prec <= parent else text


def _fallback(node: ast.AST, parent: int) -> str:
    text = ast.unparse(node)
    return f"({text})" if parent >= 0 else text


def docstring(value: object) -> str:
    """A docstring as ast.unparse writes it: in triple double quotes when it can be, else its repr."""
    if isinstance(value, str) and '"""' not in value and "\\" not in value and "\n" not in value \
            and not value.endswith('"') and value.isprintable():
        return f'"""{value}"""'
    return repr(value)


def _body(stmts: list[Any], indent: int, out: list[str], has_doc: bool = False) -> None:
    pad = "    " * indent
    for i, st in enumerate(stmts):
        kind = type(st)
        if kind is ast.Expr:
            v = st.value
            if has_doc and i == 0 and type(v) is ast.Constant and isinstance(v.value, str):
                out.append(f"{pad}{docstring(v.value)}")
            elif type(v) is ast.Yield:
                out.append(f"{pad}yield {_expr(v.value)}" if v.value is not None else f"{pad}yield")
            else:
                out.append(pad + _expr(v))
        elif kind is ast.Return:
            out.append(f"{pad}return {_expr(st.value)}" if st.value is not None else f"{pad}return")
        elif kind is ast.Assign:
            targets = [", ".join(_expr(e) for e in t.elts) if type(t) is ast.Tuple else _expr(t) for t in st.targets]
            out.append(f"{pad}{' = '.join(targets)} = {_expr(st.value)}")
        elif kind is ast.AugAssign and type(st.op) in _BIN:
            out.append(f"{pad}{_expr(st.target)} {_BIN[type(st.op)][0]}= {_expr(st.value)}")
        elif kind is ast.If:
            out.append(f"{pad}if {_expr(st.test)}:")
            _body(st.body, indent + 1, out)
            orelse = st.orelse
            while len(orelse) == 1 and type(orelse[0]) is ast.If:
                out.append(f"{pad}elif {_expr(orelse[0].test)}:")
                _body(orelse[0].body, indent + 1, out)
                orelse = orelse[0].orelse
            if orelse:
                out.append(f"{pad}else:")
                _body(orelse, indent + 1, out)
        elif kind is ast.FunctionDef and not st.decorator_list and st.returns is None:
            out.append(f"{pad}def {st.name}({_args(st.args)}):")
            _body(st.body, indent + 1, out, has_doc=True)
        elif kind is ast.For and not st.orelse:
            out.append(f"{pad}for {_expr(st.target)} in {_expr(st.iter)}:")
            _body(st.body, indent + 1, out)
        elif kind is ast.Try and not st.handlers and not st.orelse:
            out.append(f"{pad}try:")
            _body(st.body, indent + 1, out)
            out.append(f"{pad}finally:")
            _body(st.finalbody, indent + 1, out)
        elif kind is ast.Pass:
            out.append(pad + "pass")
        elif kind is ast.Continue:
            out.append(pad + "continue")
        else:
            out.extend(pad + line for line in ast.unparse(st).splitlines())


def _args(a: ast.arguments) -> str:
    if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg:
        return ast.unparse(a)
    names = [x.arg for x in a.args]
    first = len(names) - len(a.defaults)
    return ", ".join(n if i < first else f"{n}={_expr(a.defaults[i - first])}" for i, n in enumerate(names))


def unparse(tree: ast.Module) -> str:
    """The source of a generated module (see the module's docstring)."""
    out: list[str] = []
    _body(tree.body, 0, out, has_doc=True)
    return "\n".join(out)
