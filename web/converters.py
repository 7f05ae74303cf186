"""URL converters: ids in URLs stay within what the databases store, so a huge id is a 404, not a 500."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

# The largest id every table can hold: ids are INTEGER on PostgreSQL (a larger one in a query is an
# "integer out of range" error, not a miss), and no table comes near it.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """`<int:...>` limited to 0..MAX_ID in ASCII digits: anything else does not match the route (404).

    Werkzeug's own pattern is `\\d+`, which also matches other scripts' digits ("/demands/١" would
    open demand 1, "/demands/１２" demand 12); ids are written in ASCII digits only. At most 10
    digits (MAX_ID has 10), so a 10,000-digit id is not even converted.
    """

    regex = r"[0-9]{1,10}"

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 0, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def register(app: Flask) -> None:
    """Replace the `int` converter before any route is added."""
    app.url_map.converters["int"] = IdConverter
