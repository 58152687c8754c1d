"""structlog setup: JSON lines in production, readable lines on a terminal.

Every log line about an opportunity carries its `correlation_id`, bound where the runner performs the
commands, so one grep follows a snipe from signal to fill (and, live, to the relayer's response).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec
import structlog

__all__ = ["configure_logging", "get_logger", "logging_to_file"]

_REDACT = frozenset({"secret", "passphrase", "private_key", "key", "api_secret", "token", "password"})


def _redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Last line of defence: a field named like a secret is never written, whatever the caller passed."""
    for k in event_dict.keys() & _REDACT:
        event_dict[k] = "***"
    return event_dict


def _dumps(obj: Any, **_: Any) -> str:
    """msgspec's encoder: several times faster than json.dumps on the order/fill path, same output shape."""
    return msgspec.json.encode(obj, order="sorted").decode()


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
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    if mode == "json":
        processors += [
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(sort_keys=True),
        ]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    return opened


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger(**bound)


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
