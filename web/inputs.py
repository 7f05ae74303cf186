"""Reading ids, page numbers and search words from query strings and forms.

A number in a request is a plain ASCII whole number within what the databases store (ids:
1..2**31-1, see `converters.MAX_ID`); anything else (other scripts' digits such as "١٢٣", "１２" or
"²", decimals, a repeated parameter, 10,000 digits, a number out of range) is not an id, so it
never reaches a query. Views decide what "not a number" means for them: usually "no such object"
(None, then their own 400 or 404), or an error naming the parameter.
"""

from __future__ import annotations

from flask import abort, request
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from matcher.errors import ValidationError
from matcher.fields import has_control, parse_int, whole_number

from .converters import MAX_ID

# The last page a list may be asked for: beyond the results a page is empty, never a database error.
MAX_PAGE = 100_000


def int_arg(source: MultiDict, name: str, *, minimum: int = 1, maximum: int = MAX_ID,
            invalid: int | None = None) -> int | None:
    """The whole number in `source[name]` within [minimum, maximum], else None.

    Absent, empty, repeated, or not a plain ASCII whole number in range: None, or `abort(invalid)`
    when `invalid` is a status (e.g. 404) and the parameter was given but is not such a number.
    """
    values = source.getlist(name)
    if not values or (len(values) == 1 and not values[0].strip()):
        return None
    number = parse_int(values[0], minimum, maximum) if len(values) == 1 else None
    if number is None and invalid is not None:
        abort(invalid)
    return number


def page_arg(name: str = "page") -> int:
    """The page number of a list (?page=).

    Absent, or not a number at all ("abc", "١", a repeated parameter): the first page, as the lists
    have always done for a mistyped link. A whole number outside 1..MAX_PAGE (0, -1, 2**63, thirty
    digits, which used to reach the query's OFFSET and fail there): a 400 naming the parameter. A
    page beyond the last result is an empty page.
    """
    values = request.args.getlist(name)
    number = whole_number(values[0]) if len(values) == 1 else None
    if number is None:
        return 1
    if not 1 <= number <= MAX_PAGE:
        raise ValidationError({name: str(_l("Enter a page number from 1 to %(n)d.", n=MAX_PAGE))})
    return number


def text_arg(name: str, max_length: int = 60) -> str:
    """A search word from the query string: stripped, control characters (NUL) dropped, cut short."""
    value = request.args.get(name) or ""
    if has_control(value):
        value = "".join(ch for ch in value if not has_control(ch))
    return value.strip()[:max_length]

