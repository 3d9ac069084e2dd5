"""What a database argument names: a PostgreSQL URL or a SQLite file, and the URL as it
may be shown to people (without its password)."""

from __future__ import annotations


def redact(url: str) -> str:
    """A database URL without its password."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in cred else url
    return url


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url_or_path: str) -> str:
    """The file a SQLite argument names (``sqlite:///path`` or a plain path)."""
    return url_or_path[len("sqlite:///") :] if url_or_path.startswith("sqlite:///") else url_or_path
