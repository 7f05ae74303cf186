"""Short signed links to a notice's page, for messages outside the app (SMS, e-mail, WeChat).

A message cannot carry the page's full address in one SMS segment, nor should it carry anything that
signs someone in. Each outside message carries `PUBLIC_URL/n/<code>`, where the code is the notice's
id in base 62 followed by 8 base-62 characters of an HMAC-SHA256 over it (key derived from SECRET_KEY):
about 11 characters, unguessable for any other notice, checked without a lookup, and meaning nothing
but "the page this notice leads to". Following it records the first opening (`Notification.opened_at`)
and redirects to the notice's page; that page asks whoever is not signed in to sign in, as any page
does. The link logs nobody in by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import string

from .db import db
from .models import Notification, utcnow
from .settings import setting

ALPHABET = string.digits + string.ascii_letters
SIGNATURE_LENGTH = 8
MAX_CODE_LENGTH = 24
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # the demo; a deployment sets PUBLIC_URL


def _base62(number: int) -> str:
    digits = []
    while True:
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
        if number == 0:
            return "".join(reversed(digits))


def _number(text: str) -> int | None:
    value = 0
    for char in text:
        index = ALPHABET.find(char)
        if index < 0:
            return None
        value = value * 62 + index
    return value


def _key() -> bytes:
    secret = setting("SECRET_KEY", None)
    if not secret:
        raise RuntimeError("SECRET_KEY is required to sign short links")
    secret = secret if isinstance(secret, bytes) else str(secret).encode()
    return hmac.new(secret, b"linli short links", hashlib.sha256).digest()


def _signature(number: int) -> str:
    digest = int.from_bytes(hmac.new(_key(), f"n:{number}".encode(), hashlib.sha256).digest(), "big")
    return _base62(digest)[-SIGNATURE_LENGTH:].rjust(SIGNATURE_LENGTH, "0")


def code_for(notification_id: int) -> str:
    """The short code of a notice's link."""
    return _base62(int(notification_id)) + _signature(int(notification_id))


def public_url() -> str:
    """Where people reach the service (PUBLIC_URL, e.g. "https://linli.example.org"), without a final slash."""
    return str(setting("PUBLIC_URL", "") or DEFAULT_PUBLIC_URL).rstrip("/")


def short_url(notification_id: int) -> str:
    """The absolute short link of a notice, e.g. "https://linli.example.org/n/3kF9aB7xQ2c"."""
    return f"{public_url()}/n/{code_for(notification_id)}"


def notification_for(code: str) -> Notification | None:
    """The notice a code names, or None for a code that is malformed or not signed by this service."""
    if not isinstance(code, str) or not SIGNATURE_LENGTH < len(code) <= MAX_CODE_LENGTH or not code.isascii():
        return None
    number = _number(code[:-SIGNATURE_LENGTH])
    if number is None or number > 2**63 - 1:
        return None
    if not hmac.compare_digest(code[-SIGNATURE_LENGTH:].encode(), _signature(number).encode()):
        return None
    return db.session.get(Notification, number)


def record_open(notification: Notification) -> None:
    """Remember when the notice's link was first followed (flushes; the caller commits)."""
    if notification.opened_at is None:
        notification.opened_at = utcnow()
        db.session.flush()
