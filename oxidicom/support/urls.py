"""A broker URL as it may be logged: without its password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact(url: str | None) -> str:
    """``amqp://user:secret@host/vhost`` -> ``amqp://user:***@host/vhost``.

    A URL without a password is returned as it is (there is nothing to hide, and the
    operator recognises what they wrote); ``None`` or empty gives ``""``.
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(unparseable URL)"
    if password is None:
        return url
    user = parts.netloc.rpartition("@")[0].split(":", 1)[0]
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
