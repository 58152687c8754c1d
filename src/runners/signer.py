"""`polysnipe signer ...`: compose the signing server from settings and the environment, and its tools.

serve: uvicorn over the ASGI app (TLS when the settings name a certificate and key); callers
add|list|revoke and verify-audit: the Postgres tables; keys create|list: the key provider.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, Final

import psycopg
import uvicorn
from psycopg import sql

from polysnipe.adapters.clock import WallClock
from polysnipe.adapters.signer_server.app import SignerService, create_app
from polysnipe.adapters.signer_server.audit import fetch_rows, verify_rows
from polysnipe.adapters.signer_server.callers import CallerStore, CallerStoreError
from polysnipe.adapters.signer_server.factory import (
    SignerEnvError,
    audit_key_from_env,
    builder_from_env,
    db_opener,
    open_key_provider,
)
from polysnipe.adapters.signer_server.keys import KeyProvider, KeyProviderError
from polysnipe.runners.errors import UserError
from polysnipe.runners.inputs import connect_database
from polysnipe.runners.logging import get_logger
from polysnipe.runners.signer_settings import SignerSettings

__all__ = [
    "add_caller",
    "build_service",
    "create_key",
    "list_callers",
    "list_keys",
    "revoke_caller",
    "serve",
    "start_in_thread",
    "verify_audit",
]

_START_TIMEOUT_S: Final = 10.0


def _keys(settings: SignerSettings, env: Mapping[str, str]) -> KeyProvider:
    try:
        return open_key_provider(settings.key_backend_config(), env)
    except (SignerEnvError, KeyProviderError) as exc:
        raise UserError(str(exc)) from None


def build_service(
    settings: SignerSettings, database_url: str, env: Mapping[str, str], *, keys: KeyProvider | None = None
) -> SignerService:
    """The service from settings and the environment's secrets (nothing is opened yet)."""
    try:
        builder = builder_from_env(env)
        key = audit_key_from_env(env)
    except SignerEnvError as exc:
        raise UserError(str(exc)) from None
    try:
        config = settings.server_config()
    except ValueError as exc:  # settings that only make sense together (a TLS certificate and key)
        raise UserError(f"[signer] {exc}") from None
    return SignerService(
        config,
        keys=keys if keys is not None else _keys(settings, env),
        builder=builder,
        open_db=db_opener(database_url, settings.db_schema),
        audit_key=key,
        clock=WallClock(),
        log=get_logger(component="signer"),
    )


def _tls(settings: SignerSettings) -> dict[str, Any]:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return {}
    return {"ssl_certfile": settings.tls_cert_file, "ssl_keyfile": settings.tls_key_file}


def _uvicorn_config(
    app: Any, host: str, port: int, settings: SignerSettings, log_level: str
) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False, **_tls(settings)
    )


def serve(host: str, port: int, service: SignerService, settings: SignerSettings) -> None:
    """Run until interrupted; keep-alive is uvicorn's (HTTP/1.1 persistent connections)."""
    try:
        uvicorn.Server(_uvicorn_config(create_app(service), host, port, settings, "info")).run()
    except ssl.SSLError as exc:
        raise UserError(f"TLS certificate or key not usable: {exc.reason}") from None


def start_in_thread(service: SignerService, settings: SignerSettings) -> tuple[str, Callable[[], None]]:
    """Serve on 127.0.0.1 on a free port in a daemon thread (tests, benchmarks); (base URL, stop)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(_uvicorn_config(create_app(service), "127.0.0.1", port, settings, "warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="signer")
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("signing server did not start")
        time.sleep(0.005)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_S)
        sock.close()

    scheme = "https" if _tls(settings) else "http"
    return f"{scheme}://127.0.0.1:{port}", stop


def _connect(database_url: str, schema: str) -> psycopg.Connection[Any]:
    conn = connect_database(database_url)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    try:
        conn.execute("SELECT 1 FROM signer_callers, signer_audit LIMIT 0")
    except psycopg.errors.UndefinedTable:
        conn.close()
        raise UserError(
            f"schema {schema!r} has no signer tables; run `polysnipe migrate --schema {schema}` first"
        ) from None
    return conn


def check_database(settings: SignerSettings, database_url: str) -> None:
    """The signer's tables, checked before `serve` listens: a database that does not answer or a
    schema never migrated is one line, not a traceback from the server's start-up."""
    _connect(database_url, settings.db_schema).close()


def add_caller(settings: SignerSettings, database_url: str, name: str, out: IO[str]) -> int:
    with _connect(database_url, settings.db_schema) as conn:
        try:
            credential = CallerStore(conn).add(name)
        except CallerStoreError as exc:
            raise UserError(str(exc)) from None
    out.write(f"caller {name} added; its credential, shown only now (stored as a hash):\n")
    out.write(credential.token() + "\n")
    return 0


def list_callers(settings: SignerSettings, database_url: str, out: IO[str]) -> int:
    with _connect(database_url, settings.db_schema) as conn:
        callers = CallerStore(conn).list()
    for c in callers:
        state = f"revoked {c.revoked_at}" if c.revoked_at else "active"
        out.write(f"{c.name}\t{c.caller_id}\tadded {c.created_at}\t{state}\n")
    if not callers:
        out.write("no callers; add one with `polysnipe signer callers add NAME`\n")
    return 0


def revoke_caller(settings: SignerSettings, database_url: str, name: str, out: IO[str]) -> int:
    with _connect(database_url, settings.db_schema) as conn:
        try:
            CallerStore(conn).revoke(name)
        except CallerStoreError as exc:
            raise UserError(str(exc)) from None
    out.write(f"caller {name} revoked\n")
    return 0


def create_key(settings: SignerSettings, env: Mapping[str, str], out: IO[str]) -> int:
    try:
        address = _keys(settings, env).create()
    except KeyProviderError as exc:
        raise UserError(str(exc)) from None
    out.write(address + "\n")
    return 0


def list_keys(settings: SignerSettings, env: Mapping[str, str], out: IO[str]) -> int:
    for address in _keys(settings, env).addresses():
        out.write(address + "\n")
    return 0


def verify_audit(settings: SignerSettings, database_url: str, env: Mapping[str, str], out: IO[str]) -> int:
    """0 when the chain is whole; 1 (and one line per break, naming the row) when it is not."""
    try:
        key = audit_key_from_env(env)
    except SignerEnvError as exc:
        raise UserError(str(exc)) from None
    with _connect(database_url, settings.db_schema) as conn:
        count, findings = verify_rows(fetch_rows(conn), key)
    for finding in findings:
        out.write(finding.render() + "\n")
    out.write(f"{count} audit rows, {'chain intact' if not findings else f'{len(findings)} break(s)'}\n")
    return 1 if findings else 0
