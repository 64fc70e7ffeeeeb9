"""Where a store's state lives, as a value: a SQLite file path or a database URL.

Light on purpose (no SQLAlchemy at import): the CLI checks targets before it opens them.
"""

from __future__ import annotations

from pathlib import Path

#: A SQLite file, or a database URL such as `postgresql+psycopg://user@host/reelcast`.
Target = Path | str


def is_url(target: Target) -> bool:
    """True for a database URL (`scheme://…`), False for a SQLite file path."""
    return isinstance(target, str) and "://" in target


def exists(target: Target) -> bool:
    """Whether the store may hold state already: a SQLite file that exists, or any URL
    (a database server's tables are made by the first opener)."""
    return is_url(target) or Path(target).exists()


def describe(target: Target) -> str:
    """The target as it may be shown in logs and errors: a URL without its password."""
    if not is_url(target):
        return str(target)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(str(target)).render_as_string(hide_password=True)
    except ArgumentError:
        return str(target).split("://", 1)[0] + "://…"
