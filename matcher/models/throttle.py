"""Counters of password guesses that every web worker shares (when Redis is not configured)."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import db


class ThrottleCounter(db.Model):
    """Hits on one key in one fixed time window. Keys are hashes: no address or name is stored.

    `matcher.throttle` increments a row with one atomic upsert (SQLite and PostgreSQL alike) and
    deletes rows past `expires_at` (Unix seconds) as new windows begin.
    """

    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hits: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
