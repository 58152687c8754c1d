"""structlog setup: JSON lines in production, readable lines on a terminal, secrets never written.

Every log line about an opportunity carries its `correlation_id`, bound where the runner performs the
commands, so one grep follows a snipe from signal to fill (and, live, to the relayer's response).

Redaction is the last processor before rendering, so it also sees tracebacks (rendered without local
variables: a frame's locals may hold a key in plain text). It walks the whole event, nested mappings,
lists and header dicts included, and masks:

* the value of every field whose name looks secret, case-insensitively, `-` read as `_`: names
  containing secret, passphrase, private, password, api_key/apikey, authorization, mnemonic,
  credential or cookie; the names key, token, auth, creds and `*_token`; and the auth headers
  POLY_SIGNATURE and POLY_BUILDER_SIGNATURE. An L1 POLY_SIGNATURE is a bearer credential (with its
  address and timestamp it derives the API keys), and header dicts do not say which level they are.
  A signed order's `signature` stays visible: it is public, on the wire and on chain;
* every `Secret` value, wherever it sits;
* every run of exactly 64 hex digits (a 32-byte private key, with or without 0x) in any string or
  bytes value, unless the field is named as an identifier or digest (`*id`, `*ids`, `*hash`,
  `*hashes`, `digest`, `market`, `builder`, ...): order ids, condition ids and transaction hashes have
  the same shape as a key, so only their names can tell them apart, and anything unnamed is masked;
* the value of a `"secret-looking name": "value"` pair inside a string (a JSON body or frame logged
  as text).

Objects of other types are checked through their repr and replaced by the masked repr if it
changed; well-behaved objects keep their own repr.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final

import msgspec
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from polysnipe.adapters import logs
from polysnipe.core.secret import MASK, Secret

__all__ = ["configure_logging", "get_logger", "logging_to_file", "redact", "redact_secrets"]

#: matched against the field name lowercased with `-` and `_` removed (API-Key, api_key, apiKey alike)
_SECRET_WORDS: Final = re.compile(
    r"secret|passphrase|private|password|passwd|apikey|authorization|mnemonic|credential|cookie"
)
_SECRET_NAMES: Final = frozenset(
    {"key", "token", "auth", "creds", "poly_signature", "poly_builder_signature", "key_material"}
)
#: names whose 64-hex values are public identifiers or digests (order, condition, transaction ids)
_IDENTIFIER_NAMES: Final = frozenset(
    {"market", "markets", "condition", "builder", "builder_code", "metadata"}
)
_IDENTIFIER_SUFFIXES: Final = ("id", "ids", "hash", "hashes", "digest", "sha256")
#: exactly 64 hex digits, optionally 0x-prefixed, not part of a longer word
_HEX_KEY: Final = re.compile(r"(?<![0-9A-Za-z])(?:0[xX])?[0-9a-fA-F]{64}(?![0-9A-Za-z])")
#: a "name": "value" pair inside text
_QUOTED_PAIR: Final = re.compile(r'"([^"\\]{1,80})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')
#: fields structlog owns; `exc_info` must reach the exception renderer untouched
_PASS_THROUGH: Final = frozenset({"exc_info", "stack_info"})


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    normal = name.lower().replace("-", "_")
    if normal in _SECRET_NAMES or normal.endswith("_token"):
        return True
    return _SECRET_WORDS.search(normal.replace("_", "")) is not None


@functools.lru_cache(maxsize=4096)
def _identifier_name(name: str) -> bool:
    normal = name.lower().replace("-", "_")
    return normal in _IDENTIFIER_NAMES or normal.endswith(_IDENTIFIER_SUFFIXES)


def _mask_pair(match: re.Match[str]) -> str:
    if _secret_name(match.group(1)):
        return f'"{match.group(1)}"{match.group(2)}"{MASK}"'
    return match.group(0)


def _redact_text(text: str, identifier: bool) -> str:
    if not identifier and len(text) >= 64:  # a key is 64 digits: most values are shorter
        text = _HEX_KEY.sub(MASK, text)
    if '"' in text:
        text = _QUOTED_PAIR.sub(_mask_pair, text)
    return text


def redact(value: Any, name: str = "") -> Any:
    """`value` with every secret in it masked (see the module docstring); `name` is its field name."""
    if name and _secret_name(name):
        return MASK
    if type(value) is str:  # most fields, first
        return _redact_text(value, bool(name) and _identifier_name(name))
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _redact_text(value, bool(name) and _identifier_name(name))
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, name) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        identifier = bool(name) and _identifier_name(name)
        if len(raw) == 32 and not identifier:
            return MASK
        text = raw.decode("utf-8", errors="backslashreplace")
        masked = _redact_text(text, identifier)
        return value if masked == text else masked
    shown = repr(value)
    masked = _redact_text(shown, bool(name) and _identifier_name(name))
    return value if masked == shown else masked


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last line of defence, whatever the caller passed (see `redact`)."""
    for key, value in event_dict.items():
        if key not in _PASS_THROUGH:
            event_dict[key] = redact(value, key)
    return event_dict


def _dumps(obj: Any, **_: Any) -> str:
    """msgspec's encoder, keys sorted: several times faster than json.dumps for a log line; anything it
    cannot encode is written as its repr (what structlog's own JSON fallback does)."""
    return msgspec.json.encode(obj, enc_hook=repr, order="sorted").decode()


def configure_logging(
    *, mode: str = "console", level: str = "info", path: Path | None = None
) -> IO[str] | None:
    """Configure structlog once per process. `mode` is "json" (production) or "console".

    With `path`, lines go to that file (JSON), which keeps a backtest's terminal for its progress bar.
    Returns the opened file so the caller can close it.
    """
    stream: IO[str]
    opened: IO[str] | None = None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        opened = stream = path.open("w", encoding="utf-8")
        mode = "json"
    else:
        stream = sys.stderr
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks become data before redaction, without locals (they can hold a key in plain text).
    if mode == "json":
        processors += [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            redact_secrets,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
    else:
        processors += [
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.dev.ConsoleRenderer(colors=stream.isatty()),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    return opened


def get_logger(**bound: Any) -> Any:
    return logs.get_logger(**bound)


@contextlib.contextmanager
def logging_to_file(path: Path, *, level: str = "info") -> Iterator[None]:
    """JSON log lines to `path` for the duration of a run; afterwards the file is closed and logging
    goes back to the terminal, so nothing ever writes to a closed file."""
    opened = configure_logging(mode="json", level=level, path=path)
    try:
        yield
    finally:
        configure_logging(mode="console", level=level)
        if opened is not None:
            opened.close()
