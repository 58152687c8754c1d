"""Typed, documented settings: how a frozen attrs section is read from TOML, the environment and the
command line, checked once, and printed back with where each value came from.

A section is an attrs class whose fields are declared with `setting` (one value), `subsection` (a
nested section) or `table` (named entries of one section class, e.g. wallets by address). Each field
carries its documentation, the key it has in the file (units in the name: `max_order_notional_usdc`)
and a `Kind` that parses and renders it. Values inside a section are what the engine uses (money in
integer micro-units); the file speaks USDC and shares as decimal strings.

Loading starts from the section's defaults: a key the file gives replaces that key, a table the file
gives replaces the whole default table (a wallet list is the file's own, never merged with ours).
Every mistake is collected as a `Problem` naming its source and dotted key, with a "did you mean"
for unknown keys, so one `config check` reports them all.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import attrs
from attrs import AttrsInstance

from polysnipe.core.units import format_micro, parse_micro
from polysnipe.runners.errors import Problem

__all__ = [
    "DEFAULT_SOURCE",
    "Bool",
    "Choice",
    "Float",
    "Int",
    "Invalid",
    "Kind",
    "Loader",
    "Micro",
    "Spec",
    "Text",
    "dotted",
    "env_leaves",
    "field_by_key",
    "file_key",
    "iter_leaves",
    "leaf",
    "optional_setting",
    "render_toml",
    "replace_leaf",
    "setting",
    "spec_of",
    "subsection",
    "table",
]

#: what `config show` says of a value nobody set
DEFAULT_SOURCE = "default"
_SPEC = "polysnipe.setting"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ASCII_INT = re.compile(r"[+-]?[0-9]+")
_S = TypeVar("_S", bound=AttrsInstance)


class Invalid(ValueError):
    """A value a Kind refuses; the message says what is wrong and how to write it instead."""


class Kind(Protocol):
    """How one setting is written: parsed from TOML or an environment variable, rendered as TOML."""

    @property
    def what(self) -> str:
        """The accepted values in a few words, for the documentation ("whole number >= 1")."""
        ...

    def parse(self, value: object) -> Any: ...

    def parse_env(self, text: str) -> Any: ...

    def render(self, value: Any) -> str: ...


def _got(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


@attrs.frozen(slots=True)
class Int:
    """A whole number, optionally bounded or one of a few values."""

    min: int | None = None
    max: int | None = None
    choices: tuple[int, ...] = ()
    #: the range another layer checks (the core's own validators), for the documentation only
    note: str = ""

    @property
    def what(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        if self.min is not None and self.max is not None:
            return f"whole number {self.min}..{self.max}"
        if self.min is not None:
            return f"whole number >= {self.min}"
        return f"whole number {self.note}".rstrip()

    def parse(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                raise Invalid(
                    f"expected a whole number, got {value}; write it without the decimal point: {int(value)}"
                )
            if isinstance(value, str) and _ASCII_INT.fullmatch(value.strip()):
                raise Invalid(
                    f"expected a whole number, got {_got(value)}; write it without quotes: {value.strip()}"
                )
            raise Invalid(f"expected a whole number, got {_got(value)}")
        return self._check(value)

    def parse_env(self, text: str) -> int:
        if not _ASCII_INT.fullmatch(text.strip()):
            raise Invalid(f"expected a whole number, got {json.dumps(text)}")
        return self._check(int(text))

    def _check(self, value: int) -> int:
        if self.choices and value not in self.choices:
            raise Invalid(f"must be {self.what}, got {value}")
        if self.min is not None and value < self.min:
            raise Invalid(f"must be at least {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise Invalid(f"must be at most {self.max}, got {value}")
        return value

    def render(self, value: Any) -> str:
        return str(value)


@attrs.frozen(slots=True)
class Float:
    """A finite number (signal math and simulated realism only: never money)."""

    min: float | None = None
    max: float | None = None
    #: the range another layer checks (the core's own validators), for the documentation only
    note: str = ""

    @property
    def what(self) -> str:
        if self.min is not None and self.max is not None:
            return f"number {self.min}..{self.max}"
        bounds = [
            b
            for b in (
                self.note,
                *(f"{op} {v}" for op, v in ((">=", self.min), ("<=", self.max)) if v is not None),
            )
            if b
        ]
        return " ".join(["number", ", ".join(bounds)]).rstrip()

    def parse(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            if isinstance(value, str):
                try:
                    float(value)
                except ValueError:
                    pass
                else:
                    raise Invalid(
                        f"expected a number, got {_got(value)}; write it without quotes: {value.strip()}"
                    )
            raise Invalid(f"expected a number, got {_got(value)}")
        return self._check(float(value))

    def parse_env(self, text: str) -> float:
        try:
            value = float(text) if text.isascii() else math.nan
        except ValueError:
            raise Invalid(f"expected a number, got {json.dumps(text)}") from None
        return self._check(value)

    def _check(self, value: float) -> float:
        if not math.isfinite(value):
            raise Invalid(f"must be a finite number, got {value}")
        if self.min is not None and value < self.min:
            raise Invalid(f"must be at least {self.min}, got {value}")
        if self.max is not None and value > self.max:
            raise Invalid(f"must be at most {self.max}, got {value}")
        return value

    def render(self, value: Any) -> str:
        return repr(float(value))


@attrs.frozen(slots=True)
class Bool:
    @property
    def what(self) -> str:
        return "true or false"

    def parse(self, value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            raise Invalid(
                f"expected true or false, got {_got(value)}; write it without quotes: {value.strip().lower()}"
            )
        raise Invalid(f"expected true or false, got {_got(value)}")

    def parse_env(self, text: str) -> bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0"):
            raise Invalid(f"expected true or false, got {json.dumps(text)}")
        return lowered in ("true", "1")

    def render(self, value: Any) -> str:
        return "true" if value else "false"


def _did_you_mean(word: str, options: list[str], quote: Callable[[str], str] = json.dumps) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {quote(close[0])}?" if close else ""


@attrs.frozen(slots=True)
class Choice:
    """One of a few names."""

    options: tuple[str, ...]

    @property
    def what(self) -> str:
        return "one of " + ", ".join(json.dumps(o) for o in self.options)

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise Invalid(f"expected {self.what}, got {_got(value)}")
        if value not in self.options:
            raise Invalid(
                f"must be {self.what}, got {json.dumps(value)}{_did_you_mean(value, list(self.options))}"
            )
        return value

    def parse_env(self, text: str) -> str:
        return self.parse(text)

    def render(self, value: Any) -> str:
        return json.dumps(value)


@attrs.frozen(slots=True)
class Micro:
    """An exact decimal with at most 6 decimals (USDC, shares, a fee rate), held as integer micro-units.

    Written as a string ("0.05") or a whole number; a TOML float is refused, because the file's text
    "0.1" is not the binary number a float holds and money must never be rounded on the way in.
    """

    #: what the number counts, for messages: "USDC", "shares", "fee rate"
    unit: str
    min: int | None = None
    max: int | None = None
    #: the range another layer checks (the core's own validators), for the documentation only
    note: str = ""

    @property
    def what(self) -> str:
        bounds = f" {self.note}" if self.note else ""
        if self.min is not None:
            bounds = f" >= {format_micro(self.min)}" if self.min else " >= 0"
            if self.min == 1:
                bounds = " > 0"
        if self.max is not None:
            bounds += f", <= {format_micro(self.max)}"
        return f"{self.unit} as a decimal string{bounds}"

    def parse(self, value: object) -> int:
        if isinstance(value, float):
            raise Invalid(
                f"a float cannot hold {self.unit} exactly; "
                f"write it as a string, e.g. {json.dumps(repr(value))}"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            return self._check(value * 1_000_000)
        if not isinstance(value, str):
            raise Invalid(f"expected {self.unit} as a decimal string, got {_got(value)}")
        return self.parse_env(value)

    def parse_env(self, text: str) -> int:
        try:
            if not text.isascii():
                raise ValueError("not ASCII")
            micro = parse_micro(text)
        except ValueError:
            raise Invalid(
                f"expected {self.unit} as a decimal with at most 6 decimals "
                f'(e.g. "0.05"), got {json.dumps(text)}'
            ) from None
        return self._check(micro)

    def _check(self, micro: int) -> int:
        if self.min is not None and micro < self.min:
            least = "more than 0" if self.min == 1 else f"at least {format_micro(self.min)}"
            raise Invalid(f"must be {least} {self.unit}, got {json.dumps(format_micro(micro))}")
        if self.max is not None and micro > self.max:
            raise Invalid(
                f"must be at most {format_micro(self.max)} {self.unit}, got {json.dumps(format_micro(micro))}"
            )
        return micro

    def render(self, value: Any) -> str:
        return json.dumps(format_micro(value))


@attrs.frozen(slots=True)
class Text:
    """A string, checked by `check` (returns what is wrong, or None); `mask` hides parts when printed."""

    what: str = "text"
    check: Callable[[str], str | None] | None = None
    mask: Callable[[str], str] | None = None

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise Invalid(f"expected {self.what} as a string, got {_got(value)}")
        return self.parse_env(value)

    def parse_env(self, text: str) -> str:
        problem = self.check(text) if self.check is not None else None
        if problem:
            shown = self.mask(text) if self.mask is not None else text
            raise Invalid(f"{problem}, got {json.dumps(shown)}")
        return text

    def render(self, value: Any) -> str:
        return json.dumps(self.mask(value) if self.mask is not None else value)


@attrs.frozen(slots=True)
class Spec:
    """What a section field is; kept in the attrs field's metadata."""

    doc: str
    #: the key in the file; "" = the attribute's name
    key: str = ""
    kind: Kind | None = None
    #: a nested section (one class) ...
    section: type[AttrsInstance] | None = None
    #: ... or a table of named entries of this section class
    entries: type[AttrsInstance] | None = None
    #: table only: what is wrong with an entry's name, or None
    entry_name: Callable[[str], str | None] | None = None
    #: table only: every key of an entry must be written (nothing silently defaults)
    complete: bool = False
    #: the environment variable that overrides the file
    env: str = ""
    #: optional setting: what leaving it unset (None) means
    unset: str = ""


def setting(default: Any, kind: Kind, doc: str, *, key: str = "", env: str = "") -> Any:
    return attrs.field(default=default, metadata={_SPEC: Spec(doc, key, kind, env=env)})


def optional_setting(kind: Kind, doc: str, *, unset: str, key: str = "") -> Any:
    return attrs.field(default=None, metadata={_SPEC: Spec(doc, key, kind, unset=unset)})


def subsection(doc: str = "") -> dict[str, Spec]:
    """Metadata of a nested section: `attrs.field(factory=TheSection, metadata=subsection())`; its
    documentation is `doc`, else the section class's docstring."""
    return {_SPEC: Spec(doc)}


def table(
    cls: type[AttrsInstance], doc: str, *, entry_name: Callable[[str], str | None], complete: bool = False
) -> dict[str, Spec]:
    """Metadata of a table of `cls` entries by name: `attrs.field(factory=dict, metadata=table(...))`."""
    return {_SPEC: Spec(doc, entries=cls, entry_name=entry_name, complete=complete)}


def spec_of(field: attrs.Attribute[Any]) -> Spec:
    spec = field.metadata.get(_SPEC)
    if not isinstance(spec, Spec):
        raise TypeError(f"settings field {field.name} is not declared with setting()/subsection()/table()")
    if spec.kind is None and spec.entries is None and spec.section is None:
        # a subsection: its class is the field's factory
        cls = getattr(field.default, "factory", None)
        if not (isinstance(cls, type) and attrs.has(cls)):
            raise TypeError(f"subsection {field.name} needs factory=<its section class>")
        return attrs.evolve(spec, section=cls, doc=spec.doc or inspect.cleandoc(cls.__doc__ or ""))
    return spec


def file_key(field: attrs.Attribute[Any]) -> str:
    return spec_of(field).key or field.name


def field_by_key(cls: type[AttrsInstance], key: str) -> attrs.Attribute[Any] | None:
    found: attrs.Attribute[Any]
    for found in attrs.fields(cls):
        if file_key(found) == key:
            return found
    return None


def dotted(path: str, key: str) -> str:
    part = key if _BARE_KEY.fullmatch(key) else json.dumps(key)
    return f"{path}.{part}" if path else part


def _all_paths(cls: type[AttrsInstance], path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, key) of every field of `cls` and its subsections (tables' entries as <name>)."""
    for field in attrs.fields(cls):
        spec = spec_of(field)
        key = file_key(field)
        here = dotted(path, key)
        yield here, key
        if spec.section is not None:
            yield from _all_paths(spec.section, here)
        elif spec.entries is not None:
            yield from _all_paths(spec.entries, f"{here}.<name>")


@attrs.define
class Loader:
    """Reads one source into sections, collecting problems; `sources` records what it set."""

    #: how problems name this source: a file path, "environment", "command line"
    source: str
    #: the top-level section class, to suggest a key that exists elsewhere in the tree
    root: type[AttrsInstance]
    problems: list[Problem] = attrs.field(factory=list)
    #: dotted key -> source label, for every leaf this loader set
    sources: dict[str, str] = attrs.field(factory=dict)

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.source, key, message))

    def section(
        self, cls: type[_S], raw: Mapping[str, Any], base: _S | None, path: str, *, complete: bool = False
    ) -> _S:
        """`base` (or the class defaults) with the keys of `raw` replaced. The result is meaningless
        when this added problems: callers check `problems` before using it."""
        known = {file_key(f): f for f in attrs.fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in raw.items():
            here = dotted(path, key)
            field = known.get(key)
            if field is None:
                shown = f"[{here}]" if isinstance(value, dict) else here
                self.problem(shown, self._unknown(key, value, path, list(known)))
                continue
            spec = spec_of(field)
            if spec.section is not None or spec.entries is not None:
                if not isinstance(value, dict):
                    self.problem(
                        here, f"is a section, not a single value; write it as [{here}] with keys below it"
                    )
                    continue
                if spec.section is not None:
                    inner = base if base is None else getattr(base, field.name)
                    changes[field.name] = self.section(spec.section, value, inner, here)
                else:
                    changes[field.name] = self._table(spec, value, here)
                continue
            if isinstance(value, dict):
                self.problem(
                    here, f"is a single value ({spec.kind.what if spec.kind else ''}), not a section"
                )
                continue
            assert spec.kind is not None  # every leaf is declared with a kind
            try:
                changes[field.name] = spec.kind.parse(value)
            except Invalid as exc:
                self.problem(here, str(exc))
                continue
            self.sources[here] = self.source
        if complete:
            for key in known:
                if key not in raw:
                    self.problem(dotted(path, key), "missing: every entry of this table gives all its keys")
        if base is None:
            return cls(**changes)
        return attrs.evolve(base, **changes)  # type: ignore[misc]  # mypy: _S is bound to AttrsInstance

    def _table(self, spec: Spec, raw: Mapping[str, Any], path: str) -> dict[str, Any]:
        assert spec.entries is not None and spec.entry_name is not None
        out: dict[str, Any] = {}
        for name, entry in raw.items():
            here = dotted(path, name)
            wrong = spec.entry_name(name)
            if wrong:
                self.problem(here, wrong)
                continue
            if not isinstance(entry, dict):
                self.problem(here, f"is an entry of [{path}]; write it as [{here}] with its keys below it")
                continue
            out[name] = self.section(spec.entries, entry, None, here, complete=spec.complete)
        self.sources[path] = self.source
        return out

    def _unknown(self, key: str, value: object, path: str, known: list[str]) -> str:
        section = isinstance(value, dict)
        what = "unknown section" if section else "unknown key"
        if key.endswith("_micro"):
            stem = key.removesuffix("_micro")
            for name in (stem, f"{stem}_usdc", f"{stem}_shares"):
                if name in known:
                    unit = "USDC" if name.endswith("_usdc") else "shares"
                    return (
                        f"{what}: the file takes USDC and shares as decimal strings, not micro-units; "
                        f'write {name} = "1.5" ({unit}) instead'
                    )
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if close:
            target = dotted(path, close[0])
            return f"{what}; did you mean {f'[{target}]' if section else target}?"
        where = f"[{path}]" if path else "the top level"
        elsewhere = [p for p, k in _all_paths(self.root) if k == key]
        if elsewhere:
            return f"{what} in {where}; did you mean {elsewhere[0]}?"
        return f"{what}; {where} takes: {', '.join(known)}"


def leaf(cls: type[AttrsInstance], keys: list[str]) -> tuple[type, attrs.Attribute[Any], Spec] | None:
    """The single-value setting at `keys` (file keys from the top) through fixed sections, or None."""
    for i, key in enumerate(keys):
        field = field_by_key(cls, key)
        if field is None:
            return None
        spec = spec_of(field)
        if i == len(keys) - 1:
            return (cls, field, spec) if spec.kind is not None else None
        if spec.section is None:
            return None
        cls = spec.section
    return None


def replace_leaf(inst: _S, keys: list[str], value: Any) -> _S:
    """A copy of `inst` with the single-value setting at `keys` (fixed sections only) set to `value`."""
    field = field_by_key(type(inst), keys[0])
    if field is None:
        raise KeyError(".".join(keys))
    if len(keys) == 1:
        return attrs.evolve(inst, **{field.name: value})  # type: ignore[misc]
    inner = replace_leaf(getattr(inst, field.name), keys[1:], value)
    return attrs.evolve(inst, **{field.name: inner})  # type: ignore[misc]


def env_leaves(cls: type[AttrsInstance]) -> Iterator[tuple[list[str], Spec]]:
    """(file keys, spec) of every setting that an environment variable may override."""
    for field in attrs.fields(cls):
        spec = spec_of(field)
        if spec.section is not None:
            for keys, inner in env_leaves(spec.section):
                yield [file_key(field), *keys], inner
        elif spec.env:
            yield [file_key(field)], spec


def iter_leaves(inst: AttrsInstance, path: str = "") -> Iterator[tuple[str, attrs.Attribute[Any], Spec, Any]]:
    """(dotted key, field, spec, value) of every single-value setting, depth first."""
    for field in attrs.fields(type(inst)):
        spec = spec_of(field)
        value = getattr(inst, field.name)
        here = dotted(path, file_key(field))
        if spec.section is not None:
            yield from iter_leaves(value, here)
        elif spec.entries is not None:
            for name, entry in value.items():
                yield from iter_leaves(entry, dotted(here, name))
        else:
            yield here, field, spec, value


def _doc_line(spec: Spec) -> str:
    what = spec.kind.what if spec.kind is not None else ""
    env = f"; environment {spec.env}" if spec.env else ""
    return f"# {spec.doc} [{what}{env}]"


def render_toml(inst: AttrsInstance, sources: Mapping[str, str], path: str = "", doc: str = "") -> list[str]:
    """`inst` as a TOML document: every key with its documentation and, at the end of the line, where
    its value came from. Unset optional keys are comments, so the text loads back to `inst`."""
    lines: list[str] = []
    fields = attrs.fields(type(inst))
    leaves = [f for f in fields if spec_of(f).kind is not None]
    if path:
        lines += ["", *(f"# {line}" for line in doc.splitlines() if line), f"[{path}]"]
    for field in leaves:
        spec = spec_of(field)
        assert spec.kind is not None
        here = dotted(path, file_key(field))
        value = getattr(inst, field.name)
        lines.append(_doc_line(spec))
        if value is None:
            lines.append(f"# {file_key(field)} is not set: {spec.unset}")
        else:
            source = sources.get(here, DEFAULT_SOURCE)
            lines.append(f"{dotted('', file_key(field))} = {spec.kind.render(value)}  # {source}")
    for field in fields:
        spec = spec_of(field)
        here = dotted(path, file_key(field))
        value = getattr(inst, field.name)
        if spec.section is not None:
            lines += render_toml(value, sources, here, spec.doc)
        elif spec.entries is not None:
            if not value:
                lines += ["", f"# [{here}.<name>]: {spec.doc}", f"# (none: {here} is empty)"]
            for name, entry in value.items():
                lines += render_toml(entry, sources, dotted(here, name), spec.doc)
    return lines
