"""Module loggers that bind once per structlog configuration instead of once per call.

structlog's `get_logger()` returns a lazy proxy that, unless `cache_logger_on_first_use` is set, builds
a new bound logger (and a new output logger) on every call: about 30 times the cost of the call itself,
tens of microseconds on each line of the order path, paid even for a line the level filters out.
Caching on first use is not an option here: runners switch the output between the terminal and a
run's log file (runners/logging.py), and tests swap the processors (`structlog.testing.capture_logs`);
a cached logger would keep writing where it was first used.

`get_logger` returns a proxy that keeps its bound logger for as long as structlog's configuration is
the one it was bound under (the same processors, wrapper class, context class and logger factory:
`structlog.configure` replaces them), and binds again as soon as it is not.
"""

from __future__ import annotations

from typing import Any

import structlog

__all__ = ["get_logger"]


class _Logger:
    __slots__ = ("_args", "_bound", "_config", "_initial")

    def __init__(self, args: tuple[Any, ...], initial: dict[str, Any]) -> None:
        self._args = args
        self._initial = initial
        self._bound: Any = None
        self._config: tuple[Any, ...] = ()

    def _current(self) -> Any:
        c = structlog.get_config()
        held = self._config
        # written out, not a generator: this runs on every logging call
        if (
            not held
            or c["processors"] is not held[0]
            or c["wrapper_class"] is not held[1]
            or c["context_class"] is not held[2]
            or c["logger_factory"] is not held[3]
        ):
            self._bound = structlog.get_logger(*self._args, **self._initial).bind()
            self._config = (c["processors"], c["wrapper_class"], c["context_class"], c["logger_factory"])
        return self._bound

    def bind(self, **values: Any) -> Any:
        return self._current().bind(**values)

    def __getattr__(self, name: str) -> Any:
        # logging methods (info, warning, ...) of the bound logger of the configuration in force now
        return getattr(self._current(), name)


def get_logger(*args: Any, **initial_values: Any) -> Any:
    """A logger like `structlog.get_logger(*args, **initial_values)`, bound once per configuration."""
    return _Logger(args, initial_values)
