"""Jinja2-templated specs (`.j2`, `.jinja`): render in a sandbox and keep the template's lines."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compiler.spec.source import LineIndex, LoadError, template_line
from compiler.spec.values_input import TemplateReads, TemplateValues, ValuePath, dotted


@dataclass(frozen=True, slots=True)
class Rendered:
    """The rendered text and, for each of its lines (0-based), the template line it came from."""

    text: str
    template_lines: tuple[int, ...]

    def template_line(self, line: int) -> int:
        return template_line(self.template_lines, line)


class _MappingAsText(Exception):
    """A mapping of the values reached a `{{ }}`: its Python repr is no spec text."""

    def __init__(self, path: ValuePath) -> None:
        super().__init__(dotted(path))
        self.path = path


def render(source: str, values: Mapping[str, Any], name: str,
           reads: TemplateReads | None = None) -> Rendered:
    """Render `source` with `values` in a SandboxedEnvironment with StrictUndefined.

    What the template reads of the values is added to `reads`. A mapping of the values
    rendered as text (`{{ image }}` after `--set image.tag=1`) is a misuse of the values,
    raised as `values` says, located at its template line.
    Jinja2 is imported here, not at module level: `dsc lint` on plain JSON never pays for it.
    """
    from jinja2 import StrictUndefined, TemplateSyntaxError
    from jinja2 import TemplateError as JinjaError
    from jinja2.sandbox import SandboxedEnvironment

    given = TemplateValues.of(values)
    mappings = given.mappings()

    def finalize(value: Any) -> Any:
        if type(value) is dict and id(value) in mappings:
            raise _MappingAsText(mappings[id(value)])
        return value

    env = SandboxedEnvironment(
        undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False,
        finalize=finalize)
    try:
        if reads is not None:
            reads.paths |= _read_paths(env, env.parse(source), given)
            reads.templates += 1
        template = env.from_string(source)
        template.filename = name
        raw_code = env.compile(source, raw=True).splitlines()
    except TemplateSyntaxError as exc:
        if reads is not None:
            reads.complete = False
        raise LoadError(exc.message or "template syntax error", "template",
                        exc.lineno or 1) from None
    lines = LineIndex.of(source)
    out: list[str] = []
    template_lines: list[int] = []
    at_line_start = True
    cursor = 0
    generator: Any = template.root_render_func(template.new_context(dict(values)))
    try:
        for chunk in generator:
            frame = generator.gi_frame
            py_line = frame.f_lineno if frame is not None else 0
            frame_line = template.get_corresponding_lineno(py_line) if py_line else 1
            offset = -1
            code = raw_code[py_line - 1].strip() if 0 < py_line <= len(raw_code) else ""
            if code.startswith(("yield '", 'yield "')):
                # A constant chunk is a verbatim slice of the template: find it near the
                # line the compiled code points at (loops revisit earlier text).
                near = lines.starts[max(0, min(frame_line - 2, len(lines.starts) - 1))]
                offset = source.find(chunk, cursor)
                if offset < 0 or lines.position(offset)[0] > frame_line + 1:
                    offset = source.find(chunk, near)
                if offset >= 0:
                    cursor = offset + len(chunk)
            for i, ch in enumerate(chunk):
                if at_line_start:
                    template_lines.append(
                        bisect_right(lines.starts, offset + i) if offset >= 0 else frame_line
                    )
                at_line_start = ch == "\n"
            out.append(chunk)
    except _MappingAsText as exc:
        path = exc.path
        origin = given.origin_under(path)
        keys = [k for leaf in given.origins if leaf[:len(path)] == path and len(leaf) > len(path)
                for k in leaf[len(path):len(path) + 1]]
        shown = dotted(path)
        as_json = f"`{{{{ {shown} | tojson }}}}`"
        fix = (f"render one of its keys (`{{{{ {shown}.{keys[0]} }}}}`) or all of it as JSON "
               f"({as_json})" if keys else f"render it as JSON ({as_json})")
        raise given.refuse(
            f"{name}:{_template_frame_line(exc, template)}: the template renders `{shown}` as "
            f"text, but {origin.described()} makes it a mapping; give `{shown}` a plain "
            f"value, or {fix}", origin.option) from None
    except JinjaError as exc:
        raise LoadError(_message(exc), "template",
                        _template_frame_line(exc, template)) from None
    except Exception as exc:  # a filter or test failing on the values it was given
        raise LoadError(f"{type(exc).__name__}: {exc}", "template",
                        _template_frame_line(exc, template)) from None
    return Rendered("".join(out), tuple(template_lines))


def _read_paths(env: Any, ast: Any, values: Mapping[str, Any]) -> set[ValuePath]:
    """The values the template reads: each name it looks up in its context, followed through
    constant attributes and subscripts (`image.tag`, `image['tag']`), is read whole at the
    end of that chain. Read statically, whichever branch a render takes, so that a key is
    used when a template uses it, whatever the other values are. A value used any other way
    (passed to a filter or a macro, iterated, `{% set %}` to a name) counts as read with
    everything under it: what is read of it then is not known here.
    """
    from jinja2 import meta, nodes

    # Jinja's own globals (`range`, `dict`...) are not looked up in the values, unless a value
    # has the name: the context then holds the value.
    names = meta.find_undeclared_variables(ast) | {
        n.name for n in ast.find_all(nodes.Name) if n.name in env.globals and n.name in values}
    parents: dict[int, Any] = {}
    for parent in (ast, *ast.find_all(nodes.Node)):
        for child in parent.iter_child_nodes():
            parents[id(child)] = parent
    found: set[ValuePath] = set()
    for name in ast.find_all(nodes.Name):
        if name.ctx != "load" or name.name not in names:
            continue
        path = [name.name]
        node: Any = name
        parent = parents.get(id(node))
        while True:
            if isinstance(parent, nodes.Getattr) and parent.node is node:
                path.append(parent.attr)
            elif (isinstance(parent, nodes.Getitem) and parent.node is node
                  and isinstance(parent.arg, nodes.Const)
                  and isinstance(parent.arg.value, (str, int))
                  and not isinstance(parent.arg.value, bool)):
                path.append(str(parent.arg.value))
            else:
                break
            node, parent = parent, parents.get(id(parent))
        if isinstance(parent, nodes.Call) and parent.node is node and len(path) > 1:
            # A method of the value (`image.items()`): the value itself is read, whole, or
            # one key of it for `image.get('tag')`.
            method = path.pop()
            key = parent.args[0] if parent.args else None
            if (method == "get" and isinstance(key, nodes.Const)
                    and isinstance(key.value, str)):
                path.append(key.value)
        found.add(tuple(path))
    return found


def _message(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if type(exc).__name__ == "UndefinedError":
        return f"{text} (pass it with --set KEY=VALUE or --values FILE)"
    return text


def _template_frame_line(exc: BaseException, template: Any) -> int:
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_globals.get("__jinja_template__") is not None or (
            tb.tb_frame.f_code.co_filename == template.filename
        ):
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line

