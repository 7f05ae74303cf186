"""The audit trail: one entry per change a person (or the system, user None) made."""

from __future__ import annotations

from typing import Any

from .db import db
from .models import AuditEntry, User


def record_audit(user: User | None, action: str, obj: Any, **details: Any) -> None:
    """Append an audit entry for `action` on `obj` (no personal data in details)."""
    db.session.add(AuditEntry(user_id=user.id if user else None, action=action,
                              object_type=type(obj).__name__.lower(), object_id=getattr(obj, "id", None),
                              details=details))
