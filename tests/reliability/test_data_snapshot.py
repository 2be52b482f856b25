"""The detector every hostile module relies on: it must see a committed change, and only that."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.reliability.support import DataSnapshot


def test_sees_committed_updates_and_deletes_not_rolled_back_writes(
    owner_db: psycopg.Connection[Any], user_id: str, make_user: Any
) -> None:
    doomed = make_user("user")
    before = DataSnapshot.take(owner_db)
    with owner_db.transaction(force_rollback=True):
        owner_db.execute("update public.profiles set display_name = 'rolled back' where id = %s", (user_id,))
    assert before.changes(owner_db) == {}

    owner_db.execute("update public.profiles set display_name = display_name where id = %s", (user_id,))
    assert set(before.changes(owner_db)) == {"public.profiles"}

    again = DataSnapshot.take(owner_db)
    owner_db.execute("delete from auth.users where id = %s", (doomed,))  # cascades to its profile
    assert set(again.changes(owner_db)) == {"auth.users", "public.profiles"}
