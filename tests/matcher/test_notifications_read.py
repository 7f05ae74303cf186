"""Reading notifications: a user may mark only their own notification read."""

import pytest

from matcher.errors import NotFound
from matcher.models import Notification
from matcher.notifications import mark_read


def test_mark_read_only_for_ones_own_notification(world, db):
    note = Notification(user_id=world["users"]["coord"].id, kind="x", text="hello")
    db.session.add(note)
    db.session.flush()
    with pytest.raises(NotFound):
        mark_read(note, user=world["users"]["coord_a"])
    mark_read(note, user=world["users"]["coord"])
    assert note.read_at is not None
