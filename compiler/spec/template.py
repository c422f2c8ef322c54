"""Jinja2-templated specs (`.j2`, `.jinja`): render in a sandbox and keep the template's lines."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compiler.spec.source import LineIndex, LoadError, template_line


@dataclass(frozen=True, slots=True)
class Rendered:
    """The rendered text and, for each of its lines (0-based), the template line it came from."""

    text: str
    template_lines: tuple[int, ...]

    def template_line(self, line: int) -> int:
        return template_line(self.template_lines, line)


def render(source: str, values: Mapping[str, Any], name: str) -> Rendered:
    """Render `source` with `values` in a SandboxedEnvironment with StrictUndefined.

    Jinja2 is imported here, not at module level: `dsc lint` on plain JSON never pays for it.
    """
    from jinja2 import StrictUndefined, TemplateSyntaxError
    from jinja2 import TemplateError as JinjaError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    try:
        template = env.from_string(source)
        template.filename = name
        raw_code = env.compile(source, raw=True).splitlines()
    except TemplateSyntaxError as exc:
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
    except JinjaError as exc:
        raise LoadError(_message(exc), "template",
                        _template_frame_line(exc, template)) from None
    except Exception as exc:  # a filter or test failing on the values it was given
        raise LoadError(f"{type(exc).__name__}: {exc}", "template",
                        _template_frame_line(exc, template)) from None
    return Rendered("".join(out), tuple(template_lines))


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

