"""An uploaded spreadsheet, kept with what importing it did: the preview reads it again when the
clerk confirms, and the file and its result stay for the record (audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import db
from ._types import utcnow
from .people import User


class ImportFile(db.Model):
    """One upload of a spreadsheet to import (`kind`: "volunteers", "organizations", "residents",
    "demands"); `applied_at` once imported. A large file's background job keeps its `state` here
    (queued, planning, planned, importing, done, failed; None for a small file judged in the request),
    its progress (`rows_done` of `rows_total`), the stored `plan` (counts, problems, first rows) and,
    when it failed, the `message`."""

    __tablename__ = "import_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(200))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]
    # What the import did: counts by action, or the problems that stopped it.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    state: Mapped[str | None] = mapped_column(String(20))
    rows_total: Mapped[int] = mapped_column(default=0, server_default="0")
    rows_done: Mapped[int] = mapped_column(default=0, server_default="0")
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str] = mapped_column(String(500), default="", server_default="")
    updated_at: Mapped[datetime | None]

    created_by: Mapped[User] = relationship()
