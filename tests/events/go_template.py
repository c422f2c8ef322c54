"""Go text/template with sprig, the part a dsc Sensor's `dataTemplate` uses.

Argo Events renders `src.dataTemplate` with `template.New("param").Funcs(sprig.FuncMap())` and
the data `{"Input": <decoded event data>}` (params.go getValueWithTemplate). Modelled: literal
text, `{{ }}` actions with `{{-`/`-}}` trimming, pipelines with `|`, field chains
(`.Input.body.commit_id`), string and integer literals, and the functions `printf` (only `%s`
and `%%`), sprig `sha256sum`, `trunc` and `lower`. Field lookups follow text/template on
`map[string]interface{}`: a missing key is "no value" (printed `<no value>`, given to printf as
nil; JSON null prints the same), a field of JSON null or of a non-object is an execution error.

Two failures are kept apart: TemplateError is an error Go raises too (the Sensor then falls
back to `dataKey`/`value`, or fails the trigger); Unsupported is a construct the model does
not know, and it must reach the test.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.events.unsupported import Unsupported


class TemplateError(Exception):
    """A parse or execution error text/template reports for this template."""


class _Missing:
    """text/template's invalid reflect.Value: the result of a missing map key."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()
_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break",
             "continue", "nil", "true", "false"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD_CHAIN = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_INT = re.compile(r"[+-]?[0-9]+")
_SPACE = " \t\r\n"
_STRING_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True, slots=True)
class _Operand:
    kind: str  # "field" | "string" | "int" | "func"
    value: Any  # field names (tuple), the literal, or the function name


def render(template: str, data: Mapping[str, Any]) -> str:
    """Execute `template` with `data` as dot, as tpl.Execute does."""
    out: list[str] = []
    i = 0
    while True:
        start = template.find("{{", i)
        if start < 0:
            out.append(template[i:])
            return "".join(out)
        text = template[i:start]
        i = start + 2
        if template.startswith("-", i) and template[i + 1:i + 2] in tuple(_SPACE):
            text = text.rstrip(_SPACE)
            i += 1
        out.append(text)
        pipeline, i, trim_right = _lex_action(template, i)
        out.append(_print(_run_pipeline(pipeline, data)))
        if trim_right:
            while i < len(template) and template[i] in _SPACE:
                i += 1


def _lex_action(template: str, i: int) -> tuple[list[list[_Operand]], int, bool]:
    """Commands of one action up to `}}`; returns them, the index after `}}`, right trim."""
    commands: list[list[_Operand]] = [[]]
    while True:
        while i < len(template) and template[i] in _SPACE:
            i += 1
        if i >= len(template):
            raise TemplateError("unclosed action")
        if template.startswith("}}", i):
            return _checked(commands), i + 2, False
        if template.startswith("-}}", i) and template[i - 1] in _SPACE:
            return _checked(commands), i + 3, True
        ch = template[i]
        if template.startswith("/*", i):
            raise Unsupported("template comments")
        if ch == "|":
            commands.append([])
            i += 1
            continue
        if ch == '"':
            value, i = _string_literal(template, i)
            commands[-1].append(_Operand("string", value))
        elif ch == "`":
            end = template.find("`", i + 1)
            if end < 0:
                raise TemplateError("unterminated raw quoted string")
            commands[-1].append(_Operand("string", template[i + 1:end]))
            i = end + 1
        elif ch == ".":
            match = _FIELD_CHAIN.match(template, i)
            if match is None:
                raise Unsupported(f"'.' that is not a field chain at {template[i:i + 12]!r}")
            commands[-1].append(_Operand("field", tuple(match.group(0)[1:].split("."))))
            i = match.end()
        elif _INT.match(template, i) and (ch.isdigit() or template[i + 1:i + 2].isdigit()):
            match = _INT.match(template, i)
            assert match is not None
            commands[-1].append(_Operand("int", int(match.group(0))))
            i = match.end()
        elif _IDENT.match(template, i):
            match = _IDENT.match(template, i)
            assert match is not None
            name = match.group(0)
            if name in _KEYWORDS:
                raise Unsupported(f"template keyword {name!r}")
            commands[-1].append(_Operand("func", name))
            i = match.end()
        else:
            raise Unsupported(f"template syntax {template[i:i + 12]!r} (variables, parentheses, "
                              "char or float constants...)")
        _expect_terminator(template, i)


def _expect_terminator(template: str, i: int) -> None:
    # text/template lexer atTerminator: an operand must be followed by space, '|', the right
    # delimiter (or '.', ',', ':', '(', ')', which the model does not use)
    if i >= len(template) or template[i] in _SPACE + "|" or template.startswith("}}", i):
        return
    if template[i] in ".,:()":
        raise Unsupported(f"template syntax {template[i]!r} after an operand")
    raise TemplateError(f"bad character {template[i]!r} after an operand")


def _checked(commands: list[list[_Operand]]) -> list[list[_Operand]]:
    if any(not command for command in commands):
        raise TemplateError("missing value for command")
    return commands


def _string_literal(template: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    i += 1
    while i < len(template):
        ch = template[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\n":
            raise TemplateError("unterminated quoted string")
        if ch == "\\":
            escaped = template[i + 1:i + 2]
            if escaped not in _STRING_ESCAPES:
                raise Unsupported(f"string escape \\{escaped} in a template literal")
            out.append(_STRING_ESCAPES[escaped])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise TemplateError("unterminated quoted string")


# --- execution -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Value:
    value: Any
    literal_int: bool = False


def _run_pipeline(commands: list[list[_Operand]], data: Mapping[str, Any]) -> Any:
    piped: _Value | None = None
    for command in commands:
        piped = _run_command(command, piped, data)
    assert piped is not None
    return piped.value


def _run_command(command: list[_Operand], piped: _Value | None,
                 data: Mapping[str, Any]) -> _Value:
    head, rest = command[0], command[1:]
    if head.kind != "func":
        if rest or piped is not None:
            raise TemplateError("can't give argument to non-function")
        return _operand(head, data)
    function = _FUNCTIONS.get(head.value)
    if function is None:
        raise Unsupported(f"template function {head.value!r} (the model knows "
                          f"{', '.join(sorted(_FUNCTIONS))})")
    args = [_operand(operand, data) for operand in rest]
    if piped is not None:
        args.append(piped)
    return _Value(function(args))


def _operand(operand: _Operand, data: Mapping[str, Any]) -> _Value:
    if operand.kind == "string":
        return _Value(operand.value)
    if operand.kind == "int":
        return _Value(operand.value, literal_int=True)
    if operand.kind == "field":
        return _Value(_field(data, operand.value))
    raise Unsupported(f"function {operand.value!r} used as an argument")


def _field(data: Any, names: tuple[str, ...]) -> Any:
    current: Any = data
    for name in names:
        if current is MISSING:
            continue  # exec.go evalField: an invalid receiver gives the zero value again
        if isinstance(current, Mapping):
            current = current.get(name, MISSING)
        elif current is None:
            raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
        else:
            raise TemplateError(f"can't evaluate field {name} in type {_go_type(current)}")
    return current


def _go_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, list):
        return "[]interface {}"
    return type(value).__name__


def _print(value: Any) -> str:
    """How text/template prints a pipeline's value (printValue, fmt.Sprint)."""
    if isinstance(value, str):
        return value
    if value is MISSING or value is None:
        # exec.go evalPipeline turns an empty interface{} into its content, so JSON null
        # becomes the invalid Value as well
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    raise Unsupported(f"printing a {_go_type(value)} as text/template would")


def _string_arg(function: str, arg: _Value) -> str:
    if isinstance(arg.value, str) and not arg.literal_int:
        return arg.value
    if arg.value is MISSING:
        raise TemplateError(f"error calling {function}: invalid value; expected string")
    raise TemplateError(f"wrong type for value; expected string; got {_go_type(arg.value)}")


def _arity(function: str, args: list[_Value], count: int) -> None:
    if len(args) != count:
        raise TemplateError(f"wrong number of args for {function}: want {count} got {len(args)}")


def _printf(args: list[_Value]) -> str:
    if not args:
        raise TemplateError("wrong number of args for printf: want at least 1 got 0")
    fmt = _string_arg("printf", args[0])
    values = args[1:]
    out: list[str] = []
    used = 0
    for piece in re.split(r"(%.)", fmt, flags=re.DOTALL):
        if piece == "%%":
            out.append("%")
        elif piece == "%s":
            if used >= len(values):
                raise Unsupported("printf with fewer arguments than verbs (%!s(MISSING))")
            out.append(_sprintf_s(values[used].value))
            used += 1
        elif "%" in piece:
            raise Unsupported(f"printf verb {piece!r} (the model knows %s and %%)")
        else:
            out.append(piece)
    if used != len(values):
        raise Unsupported("printf with more arguments than verbs (%!(EXTRA ...))")
    return "".join(out)


def _sprintf_s(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is MISSING or value is None:
        return "%!s(<nil>)"  # a nil interface{} argument
    raise Unsupported(f"printf %s of a {_go_type(value)}")


def _sha256sum(args: list[_Value]) -> str:
    _arity("sha256sum", args, 1)
    return hashlib.sha256(_string_arg("sha256sum", args[0]).encode()).hexdigest()


def _trunc(args: list[_Value]) -> str:
    """sprig strings.go trunc(c int, s string): byte slicing, from the end when c < 0."""
    _arity("trunc", args, 2)
    if not args[0].literal_int:
        raise TemplateError("wrong type for value; expected int")
    count = int(args[0].value)
    encoded = _string_arg("trunc", args[1]).encode()
    if count < 0 and len(encoded) + count > 0:
        cut = encoded[len(encoded) + count:]
    elif count >= 0 and len(encoded) > count:
        cut = encoded[:count]
    else:
        cut = encoded
    try:
        return cut.decode()
    except UnicodeDecodeError as err:
        raise Unsupported("trunc cutting a multi-byte character (Go keeps invalid UTF-8)") from err


def _lower(args: list[_Value]) -> str:
    _arity("lower", args, 1)
    text = _string_arg("lower", args[0])
    if not text.isascii():
        raise Unsupported("lower of non-ASCII text (strings.ToLower and str.lower differ)")
    return text.lower()


_FUNCTIONS: dict[str, Callable[[list[_Value]], str]] = {
    "printf": _printf, "sha256sum": _sha256sum, "trunc": _trunc, "lower": _lower,
}
