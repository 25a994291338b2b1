"""The account a request names, or the refusal every part gives for a name that is none."""

from __future__ import annotations

from chatsecure.server.core.results import Refusal, Why
from chatsecure.storage.store import AccountRecord, Store


def named(store: Store, user: str) -> AccountRecord:
    account = store.get_account(user)
    if account is None:
        raise Refusal(Why.NO_SUCH_USER, f"no user named {user!r}")
    return account
