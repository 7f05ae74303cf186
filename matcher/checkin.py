"""Proofs of being on site: the time-based check-in and check-out codes and the signed QR tokens.

Pure functions (no database, no running app): `matcher.assignments` decides when a proof is
asked for and what a failure costs; this module only makes and checks proofs.

- Each occurrence has one random secret (`DemandOccurrence.checkin_secret`, 160 bits in base32).
  Check-in and check-out get separate keys derived from it with HMAC-SHA256 over the purpose, so
  the two codes are unrelated: a check-in code never checks anyone out.
- The code is a TOTP (RFC 6238, `pyotp`): 6 digits, a new one every `STEP` seconds. The code of the
  previous step is accepted too, so a code typed just before the screen changed still works; a
  code is thus good for one to two minutes, and never for a later step (no guessing days ahead).
- The QR code carries a URL with a token signed with the app's SECRET_KEY (itsdangerous, its own
  salt) that names the occurrence and the purpose and carries the time it was made; it is good for
  `max_age` seconds and only for that occurrence and purpose.

Times are Unix timestamps (seconds), so that tests can ask "at that moment" and get the same answer
as the worker's screen had then.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

import pyotp
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

CHECK_IN, CHECK_OUT = "in", "out"
PURPOSES = (CHECK_IN, CHECK_OUT)
STEP = 60  # seconds a code is shown
DIGITS = 6
ACCEPTED_STEPS = 2  # the current step and the one before it
TOKEN_SALT = "linli.checkin.v1"
TOKEN_MAX_LENGTH = 300  # a real token is about 70 characters; longer input is not looked at

# Chinese input methods type full-width digits (０-９); they are the same digits.
_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")
_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")


def new_secret() -> str:
    """A fresh random occurrence secret (base32, 160 bits)."""
    return pyotp.random_base32()


def _totp(secret: str, purpose: str) -> pyotp.TOTP:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    key = hmac.new(base64.b32decode(secret), b"linli/checkin/" + purpose.encode(), hashlib.sha256).digest()[:20]
    return pyotp.TOTP(base64.b32encode(key).decode(), digits=DIGITS, interval=STEP)


def code_at(secret: str, purpose: str, when: float) -> str:
    """The code for `purpose` shown at the moment `when`."""
    return _totp(secret, purpose).at(int(when))


def seconds_left(when: float) -> int:
    """Seconds until the code shown at `when` is replaced (1..STEP)."""
    return STEP - int(when) % STEP


def normalize_code(raw: Any) -> str:
    """The code as typed, without spaces or dashes, full-width digits made ASCII (may still be invalid)."""
    text = str(raw or "").translate(_FULL_WIDTH)
    return re.sub(r"[\s\-]", "", text)


def well_formed(raw: Any) -> bool:
    """Whether the input is six digits 0-9 (after `normalize_code`)."""
    return bool(_CODE.fullmatch(normalize_code(raw)))


def verify_code(secret: str | None, purpose: str, raw: Any, when: float) -> bool:
    """Whether `raw` is the code for `purpose` at `when` or one step before."""
    code = normalize_code(raw)
    if not secret or not _CODE.fullmatch(code):
        return False
    totp = _totp(secret, purpose)
    good = False
    for back in range(ACCEPTED_STEPS):  # compare all, in constant time
        good |= hmac.compare_digest(code, totp.at(int(when), counter_offset=-back))
    return good


class _ClockSigner(TimestampSigner):
    """itsdangerous' timestamp signer on a given clock (`at`, a Unix time) instead of the machine's."""

    def __init__(self, *args: Any, at: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.at = at

    def get_timestamp(self) -> int:
        return int(self.at) if self.at is not None else super().get_timestamp()


def _serializer(secret_key: str | bytes, when: float) -> URLSafeTimedSerializer:
    if not secret_key:
        raise ValueError("a SECRET_KEY is needed to sign check-in tokens")
    return URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT, signer=_ClockSigner, signer_kwargs={"at": when})


def make_token(secret_key: str | bytes, occurrence_id: int, purpose: str, when: float) -> str:
    """A signed token naming the occurrence and the purpose, made at `when` (for the QR code's URL)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    return _serializer(secret_key, when).dumps({"o": occurrence_id, "p": purpose})


def verify_token(secret_key: str | bytes | None, token: Any, occurrence_id: int, purpose: str, when: float,
                 max_age: int) -> bool:
    """Whether `token` was signed by us for this occurrence and purpose at most `max_age` seconds before `when`."""
    token = str(token or "")
    if not secret_key or not token or len(token) > TOKEN_MAX_LENGTH:
        return False
    try:
        data = _serializer(secret_key, when).loads(token, max_age=max_age)
    except BadData:
        return False
    return isinstance(data, dict) and data.get("o") == occurrence_id and data.get("p") == purpose
