"""Input files and output folders named on the command line, checked before a run starts, and the
market metadata a live run loads from the venue instead of (or besides) files.

A missing file, a folder where a file belongs, an unreadable, malformed or empty input is an
`InputError` naming the path, the option it was given to and what to do, so a run never starts on
input it would crash on or silently ignore.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from polysnipe.adapters.clob.errors import MalformedMessage
from polysnipe.adapters.metadata import Catalog, load_documents, read_document
from polysnipe.adapters.metadata_http import MetadataHttpConfig, MetadataUnavailable, load_catalog_http
from polysnipe.adapters.urls import mask_url
from polysnipe.core.units import parse_micro
from polysnipe.runners.errors import InputError, UnreachableService
from polysnipe.runners.report import Label

__all__ = [
    "output_dir",
    "read_json_file",
    "read_labels",
    "read_market_documents",
    "read_market_files",
    "require_file",
    "require_lines",
    "venue_catalog",
]

_MARKETS_FORMAT = (
    'CLOB GET /markets JSON (a page {"data": [...]}, a list or one market), GET /clob-markets answers'
    " by condition id, or Gamma GET /markets or GET /events JSON"
)


def require_file(path: str | os.PathLike[str], option: str) -> Path:
    """`path` as a Path if it is a readable regular file."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, f"no such file (given to {option})")
    if p.is_dir():
        raise InputError(p, f"is a directory; {option} takes a file")
    if not p.is_file():
        # a pipe would wait for a writer for ever, /dev/zero would never end
        raise InputError(p, f"is not a regular file (a pipe or a device); {option} takes a file")
    if not os.access(p, os.R_OK):
        raise InputError(p, f"cannot be read: permission denied (given to {option})")
    return p


def require_lines(path: str | os.PathLike[str], option: str, what: str) -> Path:
    """A readable file with at least one non-blank line (JSON-lines inputs)."""
    p = require_file(path, option)
    try:
        with p.open("rb") as fh:
            if any(not line.isspace() for line in fh):
                return p
    except OSError as exc:
        raise InputError(p, f"cannot be read: {exc.strerror}") from None
    raise InputError(p, f"is empty; {option} takes {what}, one JSON object per line")


def read_market_documents(paths: Sequence[str | os.PathLike[str]], option: str) -> dict[str, bytes]:
    """Every markets file given, read and checked to be a metadata document, at least one of them
    holding a market (path -> bytes, for adapters/metadata.load_documents). An empty answer beside
    others is data, not a mistake: Gamma's GET /events is `[]` for a universe with no neg-risk
    event, as `polysnipe generate --neg-risk-events 0` writes it."""
    checked = [require_file(path, option) for path in paths]
    documents: dict[str, bytes] = {}
    for p in checked:
        try:
            documents[str(p)] = p.read_bytes()
        except OSError as exc:
            raise InputError(p, f"cannot be read: {exc.strerror}") from None
    empty: list[Path] = []
    for p in checked:
        try:
            facts, _ = read_document(documents[str(p)], p.name)
        except MalformedMessage as exc:
            raise InputError(
                p, f"not a markets file ({exc.reason}); {option} takes {_MARKETS_FORMAT}"
            ) from None
        if not facts:
            empty.append(p)
    if checked and len(empty) == len(checked):
        raise InputError(empty[0], f"holds no market; {option} takes {_MARKETS_FORMAT}")
    return documents


def read_market_files(paths: Sequence[str | os.PathLike[str]], option: str) -> Catalog:
    """The merged metadata of every markets file given (any shape adapters/metadata.py reads); at
    least one market must be usable."""
    catalog = load_documents(read_market_documents(paths, option))
    if not catalog.markets:
        why = f" ({catalog.refused[0][1]})" if catalog.refused else ""
        where = Path(paths[0]) if len(paths) == 1 else Path(", ".join(map(str, paths)))
        raise InputError(where, f"hold no market that can be traded{why}; {option} needs at least one")
    return catalog


def venue_catalog(
    config: MetadataHttpConfig, paths: Sequence[str | os.PathLike[str]] = (), option: str = "--markets"
) -> Catalog:
    """The metadata of `config`'s markets as the venue serves it (CLOB and Gamma over HTTP), merged with
    the markets files given; at least one market must be usable."""
    files = read_market_documents(paths, option) if paths else {}
    try:
        catalog = asyncio.run(load_catalog_http(config, files=files))
    except MetadataUnavailable as exc:
        raise UnreachableService(
            f"cannot load market metadata: {exc}; check --clob-url / POLYSNIPE_CLOB_URL and --gamma-url /"
            " POLYSNIPE_GAMMA_URL, or give --markets files"
        ) from None
    if not catalog.markets:
        why = f" ({catalog.refused[0][0]}: {catalog.refused[0][1]})" if catalog.refused else ""
        raise UnreachableService(f"the venue at {config.clob_url} lists no market that can be traded{why}")
    return catalog


def read_json_file(path: str | os.PathLike[str], option: str) -> Any:
    p = require_file(path, option)
    try:
        return json.loads(p.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(p, f"not valid JSON ({exc}); {option} takes a JSON file") from None
    except ValueError as exc:  # an integer past Python's 4300-digit limit
        raise InputError(p, f"not usable JSON ({str(exc)[:120]}); {option} takes a JSON file") from None
    except RecursionError:
        raise InputError(p, f"JSON nested too deeply; {option} takes a JSON file") from None
    except OSError as exc:
        raise InputError(p, f"cannot be read: {exc.strerror}") from None


def _label(d: Any) -> Label:
    if not isinstance(d, dict):
        raise ValueError("expected a JSON object")
    for key in ("kind", "token_id"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise ValueError(f"{key} must be a non-empty string")
    for key in ("start_ms", "end_ms"):
        if type(d.get(key)) is not int:
            raise ValueError(f"{key} must be an integer (epoch ms)")
    if d["end_ms"] < d["start_ms"]:
        raise ValueError("end_ms is before start_ms")
    edge = d.get("edge", "0")
    if not isinstance(edge, str) or not edge.isascii():
        raise ValueError('edge must be a decimal string, e.g. "0.02"')
    for key in ("market", "note"):
        if not isinstance(d.get(key, ""), str):
            raise ValueError(f"{key} must be a string")
    return Label(d["kind"], d["token_id"], d.get("market", ""), d["start_ms"], d["end_ms"], parse_micro(edge),
                 d.get("note", ""))  # fmt: skip


def read_labels(path: str | os.PathLike[str], option: str) -> list[Label]:
    """Planted inefficiencies (labels.jsonl, as `polysnipe generate` writes them); every line must parse."""
    p = require_file(path, option)
    labels: list[Label] = []
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(p, f"not UTF-8 text; {option} takes labels as JSON lines") from None
    except OSError as exc:
        raise InputError(p, f"cannot be read: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            labels.append(_label(json.loads(line)))
        except RecursionError:
            raise InputError(p, f"line {number}: JSON nested too deeply") from None
        except ValueError as exc:  # json.JSONDecodeError is one
            raise InputError(
                p, f"line {number}: {exc}; {option} takes labels as `polysnipe generate` writes them"
            ) from None
    return labels


def output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """The output folder, created if missing; refused if it is a file or cannot be written."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(p, f"exists and is not a directory; {option} takes a folder for the outputs")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(p, f"cannot create the output folder: {exc.strerror}") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(p, f"cannot write into this folder: permission denied (given to {option})")
    return p


def connect_database(url: str, *, hint: str = "check POLYSNIPE_DATABASE_URL") -> psycopg.Connection[Any]:
    """An autocommit connection to the database at `url`; UnreachableService (one line, the URL
    without its password, and `hint`) when it does not answer or refuses the URL."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreachableService(
            f"cannot connect to the database at {mask_url(url)} ({reason}); {hint}"
        ) from None
