"""URL converters: ids in URLs stay within what the databases store, so a huge id is a 404, not a 500."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

# The largest id SQLite and PostgreSQL (BIGINT) can hold.
MAX_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` limited to 0..MAX_ID: a larger number does not match the route (404)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 0, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register(app: Flask) -> None:
    """Replace the `int` converter before any route is added."""
    app.url_map.converters["int"] = IdConverter
