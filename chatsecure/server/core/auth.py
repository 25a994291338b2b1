"""Logins and password changes: bcrypt off the reader threads, capped, and throttled.

A bcrypt check at the default cost takes about a quarter of a second of CPU, so the
checks run in a small pool (one worker per core by default): a login storm queues
instead of starving the rest of the server. Throttling is per account (stored, so it
survives a restart) and per client address (in memory, with a higher limit). Unknown
names are throttled like real ones, in memory, so a "rate_limited" reply does not tell
that an account exists; and an unknown name spends the same bcrypt time as a real one.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from chatsecure.config import AuthSettings
from chatsecure.lockout import locked_until
from chatsecure.names import is_valid_username, username_key
from chatsecure.passwords import (
    WeakPasswordError,
    check_policy,
    hash_password,
    needs_rehash,
    verify_against_nothing,
    verify_password,
)
from chatsecure.server.core.limits import FailureCounter
from chatsecure.storage.store import AccountRecord, Store, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")


BCRYPT_NICENESS = 10


def _yield_to_chat() -> None:
    """Lower this bcrypt worker's scheduling priority (Linux sets it per thread).

    A login storm keeps every worker busy on every core; at normal priority the chat
    threads then wait for a core behind bcrypt and messages stall (p99 ~100 ms in the
    bench). Niced, bcrypt still gets all the CPU the chat leaves idle.
    """
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BCRYPT_NICENESS)


@dataclass(frozen=True, slots=True)
class LoginAccepted:
    account: AccountRecord


@dataclass(frozen=True, slots=True)
class LoginRefused:
    """``retry_after`` is set when the refusal is throttling rather than bad credentials."""

    retry_after: int | None = None


class PasswordChangeError(Exception):
    """``weak`` tells a policy refusal from a wrong old password."""

    def __init__(self, message: str, *, weak: bool) -> None:
        super().__init__(message)
        self.weak = weak


class Authenticator:
    def __init__(
        self,
        store: Store,
        settings: AuthSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        workers = settings.max_concurrent_checks or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="bcrypt", initializer=_yield_to_chat
        )
        self._by_address = FailureCounter(
            settings.max_failures_per_address, settings.failure_window
        )
        self._failures_in_memory = FailureCounter(settings.max_failures, settings.failure_window)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _bcrypt(self, fn: Callable[..., T], *args: object) -> T:
        """Run a bcrypt computation in the capped pool; the caller waits for it."""
        return self._pool.submit(fn, *args).result()

    def login(self, username: str, password: str, address: str) -> LoginAccepted | LoginRefused:
        now = self._clock()
        wait = self._by_address.retry_after(address, now)
        if wait:
            return LoginRefused(retry_after=wait)
        account = self._store.get_account(username) if is_valid_username(username) else None
        wait = self._unknown_wait(username, now)
        if account:
            wait = max(wait, self._account_wait(account))
        if wait:
            return LoginRefused(retry_after=wait)

        rounds = self._settings.bcrypt_rounds
        if account is None:
            self._bcrypt(verify_against_nothing, password, rounds)
            matched = False
        else:
            matched = self._bcrypt(verify_password, password, account.password_hash)

        if not matched or account is None or account.disabled:
            self._by_address.fail(address, now)
            window = self._settings.failure_window
            if account is None or not self._bookkeep(
                self._store.record_login_failure, account.id, window
            ):
                # Unknown names, and real ones while the store cannot count, count in memory.
                self._failures_in_memory.fail(username_key(username), now)
            return LoginRefused()

        self._bookkeep(self._store.record_login, account.id)
        if needs_rehash(account.password_hash, rounds):
            new_hash = self._bcrypt(hash_password, password, rounds)
            self._bookkeep(self._store.set_password, account.name, new_hash)
        return LoginAccepted(account)

    @staticmethod
    def _bookkeep(write: Callable[..., object], *args: object) -> bool:
        """Run a login's bookkeeping write; if the store fails, log it and carry on.

        A login's outcome never depends on it: while the disk is full or the database
        locked, a right password still lets its owner in to read, and a wrong one gets
        the same refusal as an unknown name (a server_error would tell the two apart).
        """
        try:
            write(*args)
        except Exception:
            log.warning("could not record a login outcome (storage fault)", exc_info=True)
            return False
        return True

    def _account_wait(self, account: AccountRecord) -> int:
        until = locked_until(account.failed_logins, account.failures_since, self._settings)
        if until is None:
            return 0
        remaining = (until - utcnow()).total_seconds()
        return max(1, math.ceil(remaining)) if remaining > 0 else 0

    def _unknown_wait(self, username: str, now: float) -> int:
        return self._failures_in_memory.retry_after(username_key(username), now)

    def change_password(self, account_name: str, old: str, new: str) -> None:
        """Check ``old``, apply the policy to ``new`` and store it; raise PasswordChangeError."""
        account = self._store.get_account(account_name)
        if account is None or not self._bcrypt(verify_password, old, account.password_hash):
            if account is not None:
                self._store.record_login_failure(account.id, self._settings.failure_window)
            raise PasswordChangeError("the old password is not correct", weak=False)
        try:
            check_policy(new, account.name)
        except WeakPasswordError as exc:
            raise PasswordChangeError(str(exc), weak=True) from None
        new_hash = self._bcrypt(hash_password, new, self._settings.bcrypt_rounds)
        self._store.set_password(account.name, new_hash)
        log.info("password changed for %s", account.name)
