"""adapters.logs: module loggers bind once per structlog configuration and follow every new one."""

from __future__ import annotations

from pathlib import Path

import structlog
from structlog.testing import capture_logs

from polysnipe.adapters.logs import get_logger
from polysnipe.runners.logging import configure_logging, logging_to_file


def test_a_logger_used_before_capture_logs_is_captured() -> None:
    log = get_logger("polysnipe.test", component="x")
    log.info("before")  # bound under the configuration in force
    with capture_logs() as entries:
        log.info("during", n=1)
        log.bind(extra=2).warning("bound")
    assert [
        {"component": "x", "event": "during", "log_level": "info", "n": 1},
        {"component": "x", "event": "bound", "extra": 2, "log_level": "warning"},
    ] == entries


def test_the_bound_logger_is_kept_while_the_configuration_stands() -> None:
    log = get_logger("polysnipe.test")
    first = log._current()
    assert first is log._current()
    structlog.configure(processors=list(structlog.get_config()["processors"]))
    assert first is not log._current()


def test_a_run_log_file_gets_the_lines_and_the_terminal_gets_them_back(tmp_path: Path) -> None:
    log = get_logger("polysnipe.test")
    log.info("to the terminal")
    with logging_to_file(tmp_path / "run.log"):
        log.info("to the file", k="v")
    log.info("to the terminal again")
    lines = (tmp_path / "run.log").read_text(encoding="utf-8").splitlines()
    assert 1 == len(lines)
    assert '"event":"to the file"' in lines[0]
    configure_logging(mode="console")
