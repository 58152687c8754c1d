"""URLs as every adapter prints them: a password in a URL is never shown."""

from __future__ import annotations

import urllib.parse

__all__ = ["mask_url", "url_password"]


def url_password(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:
        return None


def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***, for printing."""
    password = url_password(url)
    if not password:
        return url
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
