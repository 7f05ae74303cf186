"""URL converters: ids in URLs stay within what the databases store, so a huge id is a 404, not a 500."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

# The largest id SQLite and PostgreSQL (BIGINT) can hold.
MAX_ID = 2**63 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` limited to 0..MAX_ID in ASCII digits: anything else does not match the route (404).

    Werkzeug's own pattern is `\\d+`, which also matches other scripts' digits ("/demands/١" would
    open demand 1, "/demands/１２" demand 12); ids are written in ASCII digits only. At most 19
    digits (MAX_ID has 19), so a 10,000-digit id is not even converted.
    """

    regex = r"[0-9]{1,19}"

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 0, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register(app: Flask) -> None:
    """Replace the `int` converter before any route is added."""
    app.url_map.converters["int"] = IdConverter
