"""Template values from `--set KEY=VALUE` and `--values FILE`: merged in that precedence, each
remembering where it was given, and checked against what the templates read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A value's place in the nested values: `--set image.tag=1` is ("image", "tag").
ValuePath = tuple[str, ...]


class TemplateValuesError(Exception):
    """Values that cannot be used, and the option (`--set`, `--values`) that gave them."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


# How the caller wants a misuse of the values raised. The values are checked against the
# templates only once every spec is loaded, deep inside each command's core; the command line
# makes that a usage error (exit 2) of its own kind without catching it in every command.
Refuse = Callable[[TemplateValuesError], Exception]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one value was given: the `--set` item, or the key's place in a `--values` file."""

    option: str  # "--set" or "--values"; "values" for values passed in code
    where: str  # "image.tag=1", "values.yaml:3:1"; "" for values passed in code

    def described(self) -> str:
        return f"--set {self.where}" if self.option == "--set" else self.where or "the values"


class TemplateValues(Mapping[str, Any]):
    """The merged values, what each leaf's origin is, and how a misuse is to be raised."""

    __slots__ = ("_refuse", "data", "origins")

    def __init__(self, data: dict[str, Any], origins: dict[ValuePath, Origin] | None = None,
                 refuse: Refuse | None = None) -> None:
        self.data = data
        self.origins = origins if origins is not None else {
            leaf: Origin("values", "") for leaf in leaves(data)}
        self._refuse = refuse

    @staticmethod
    def of(values: Mapping[str, Any]) -> TemplateValues:
        return values if isinstance(values, TemplateValues) else TemplateValues(dict(values))

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def refuse(self, message: str, option: str) -> Exception:
        error = TemplateValuesError(message, option)
        return self._refuse(error) if self._refuse is not None else error

    def origin_under(self, path: ValuePath) -> Origin:
        """The origin of the first value at or under `path`."""
        for leaf, origin in self.origins.items():
            if leaf[:len(path)] == path:
                return origin
        return Origin("values", "")

    def mappings(self) -> dict[int, ValuePath]:
        """Every mapping inside the values, by identity: what a template must not render as
        text. They are the very objects the templates are given, alive while they render."""
        found: dict[int, ValuePath] = {}
        stack: list[tuple[Any, ValuePath]] = [(self.data, ())]
        while stack:
            value, path = stack.pop()
            if isinstance(value, dict):
                if path:
                    found[id(value)] = path
                stack.extend((v, (*path, str(k))) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend((v, (*path, str(i))) for i, v in enumerate(value))
        return found


@dataclass(slots=True)
class TemplateReads:
    """What the templates rendered so far read of the values (each path read whole: its keys
    and everything under them), and whether that is known for every template met."""

    paths: set[ValuePath] = field(default_factory=set)
    templates: int = 0
    complete: bool = True  # False once a template could not be read or parsed

    def merge(self, other: TemplateReads) -> None:
        self.paths |= other.paths
        self.templates += other.templates
        self.complete = self.complete and other.complete


def dotted(path: ValuePath) -> str:
    return ".".join(path)


def leaves(data: dict[str, Any], prefix: ValuePath = ()) -> Iterator[ValuePath]:
    """The path of every value that is not a non-empty mapping (a list is one value)."""
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            yield from leaves(value, path)
        else:
            yield path


def template_values(sets: Iterable[str], files: Iterable[Path],
                    refuse: Refuse | None = None) -> TemplateValues:
    """The values of `files` (later ones win, mappings merge), then of `sets` (dotted keys
    nest), each leaf with the origin it got its value from."""
    values: dict[str, Any] = {}
    sources: list[Callable[[ValuePath], Origin | None]] = []
    for file in files:
        data, locate = _read_values(file)
        _merge(values, data)
        sources.append(locate)
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TemplateValuesError(f"{item!r} is not KEY=VALUE", "--set")
        target = values
        parts = tuple(key.strip().split("."))
        for part in parts[:-1]:
            nested = target.get(part)
            if not isinstance(nested, dict):
                nested = target[part] = {}
            target = nested
        target[parts[-1]] = value
        sources.append(_set_locator(parts, Origin("--set", item)))
    origins: dict[ValuePath, Origin] = {}
    for leaf in leaves(values):
        # The last source that holds this leaf is the one whose value is left there: a later
        # one that changed it, or anything above it, would hold it too.
        for locate in reversed(sources):
            found = locate(leaf)
            if found is not None:
                origins[leaf] = found
                break
    return TemplateValues(values, origins, refuse)


def _set_locator(parts: ValuePath, origin: Origin) -> Callable[[ValuePath], Origin | None]:
    def locate(leaf: ValuePath) -> Origin | None:
        return origin if leaf == parts else None
    return locate


def _read_values(file: Path) -> tuple[dict[str, Any], Callable[[ValuePath], Origin | None]]:
    from compiler.spec.source import LoadError, SourceMap
    from compiler.spec.yamlsource import compose_documents

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateValuesError(f"cannot read {file}: {exc}", "--values") from None
    try:
        docs = list(compose_documents(text))
    except LoadError as exc:
        raise TemplateValuesError(f"{file}:{exc.line}:{exc.col}: {exc.message}",
                                  "--values") from None
    if len(docs) != 1 or not isinstance(docs[0][0], dict):
        raise TemplateValuesError(f"{file} must hold one YAML mapping of values", "--values")
    data: dict[str, Any] = docs[0][0]
    source = SourceMap(docs[0][2], docs[0][1])

    def locate(leaf: ValuePath) -> Origin | None:
        node: Any = data
        for part in leaf:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        if isinstance(node, dict) and node:
            return None  # a mapping here: the leaf's value came from elsewhere
        line, col = source.locate(leaf, key=True)
        return Origin("--values", f"{file}:{line}:{col}")

    return data, locate


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def check_values_read(values: Mapping[str, Any], reads: TemplateReads) -> None:
    """Raise (as `values` says) for the first value no template reads: a typo (`--set
    imag=...`) that would otherwise be ignored while the template falls back to a default."""
    given = TemplateValues.of(values)
    if not given.origins or not reads.complete:
        return  # nothing given, or a template whose reads are unknown (its error says why)
    unread = [leaf for leaf in given.origins if not _is_read(leaf, reads.paths)]
    if not unread:
        return
    # A command-line typo first, then the values files in the order given.
    unread.sort(key=lambda leaf: given.origins[leaf].option != "--set")
    leaf = unread[0]
    origin = given.origins[leaf]
    where = f"{origin.where}: " if origin.where else ""
    if reads.templates == 0:
        message = (f"{where}no file given is a template (.j2, .jinja), so no template reads "
                   f"`{dotted(leaf)}`")
    else:
        message = f"{where}no template reads `{dotted(leaf)}`{_did_you_mean(leaf, reads)}"
    if len(unread) > 1:
        message += " (also unread: " + ", ".join(
            f"`{dotted(other)}`" for other in unread[1:4]) + (", ..." if len(unread) > 4
                                                               else "") + ")"
    raise given.refuse(message, origin.option)


def _is_read(leaf: ValuePath, paths: set[ValuePath]) -> bool:
    # Read if a template reads it, something under it (`image` given, `image.tag` read), or
    # something it is under (`image.tag` given, `image` read whole: passed to a filter,
    # iterated, rendered).
    return any(leaf[:len(path)] == path or path[:len(leaf)] == leaf for path in paths)


def _did_you_mean(leaf: ValuePath, reads: TemplateReads) -> str:
    from difflib import get_close_matches

    known = {dotted(path[:n]) for path in reads.paths for n in range(1, len(path) + 1)}
    close = get_close_matches(dotted(leaf), sorted(known), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""
