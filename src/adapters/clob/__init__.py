"""Polymarket CLOB adapter: wire schemas and parsing, REST/WebSocket clients, signed V2 execution.

Layout follows STYLE.md (one file per concern: schemas, parsing, errors, client, ...). Import the
submodule you need; this package module stays empty so importing one piece never pulls in the
network clients.
"""

__all__: list[str] = []
