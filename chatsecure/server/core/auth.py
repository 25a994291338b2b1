"""Logins and password changes: bcrypt off the reading thread, capped, fair, and throttled.

A bcrypt check at the default cost takes about a quarter of a second of CPU, so the
checks run in a small pool (one worker per core by default): a login storm queues
instead of starving the rest of the server. The queue is fair per account and address,
so one of them with many checks waiting cannot make everyone else's wait behind them.

Every check, a login's or a password change's, is throttled per account and per client
address (with a higher limit), both counted in the database, so they survive a restart
and hold across the nodes of a cluster; and it is charged to both before it runs:
attempts in flight count (in this node's memory), so a burst of simultaneous guesses
gets no more checks than the limit. Unknown names are throttled like real ones, in
memory, so a "rate_limited" reply does not tell that an account exists; and an unknown
name spends the same bcrypt time as a real one.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from chatsecure.config import AuthSettings
from chatsecure.lockout import window_end
from chatsecure.names import is_valid_username, username_key
from chatsecure.passwords import (
    WeakPasswordError,
    check_policy,
    hash_password,
    needs_rehash,
    verify_against_nothing,
    verify_password,
)
from chatsecure.server.core.limits import Attempt, FailureCounter
from chatsecure.server.core.live import LiveSettings
from chatsecure.server.core.results import Refusal, Why
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


class _Job:
    __slots__ = ("args", "fn", "future", "order", "owners")

    def __init__(
        self,
        owners: tuple[str, ...],
        order: int,
        fn: Callable[..., object],
        args: tuple[object, ...],
    ) -> None:
        self.owners = owners
        self.order = order
        self.fn = fn
        self.args = args
        self.future: Future[object] = Future()


class FairPool:
    """At most ``workers`` threads, running the waiting job whose owners were served least.

    Each job has owners (an account name and a client address). While an owner has jobs
    waiting or running, the pool counts how many of its jobs it has started; the next job
    is the one whose busiest owner has the lowest count, the oldest among equals. So an
    owner with many jobs waiting takes turns with everyone else instead of holding the
    queue, and with every owner at one job at a time it is first come, first served.
    """

    def __init__(self, workers: int, initializer: Callable[[], None]) -> None:
        self._max_workers = workers
        self._initializer = initializer
        self._ready = threading.Condition()
        self._waiting: list[_Job] = []
        self._started: Counter[str] = Counter()  # per owner with work: jobs started
        self._busy: Counter[str] = Counter()  # per owner: jobs waiting or running
        self._order = itertools.count()
        self._threads = 0
        self._idle = 0
        self._closed = False

    def submit(self, owners: tuple[str, ...], fn: Callable[..., T], *args: object) -> Future[T]:
        job = _Job(owners, next(self._order), fn, args)
        with self._ready:
            if self._closed:
                raise RuntimeError("the bcrypt pool is closed")
            self._waiting.append(job)
            self._busy.update(owners)
            if self._idle:
                self._ready.notify()
            elif self._threads < self._max_workers:
                self._threads += 1
                threading.Thread(target=self._work, name="bcrypt", daemon=True).start()
        return job.future  # type: ignore[return-value]

    def close(self) -> None:
        """Cancel what waits; running jobs finish, and the threads then end."""
        with self._ready:
            self._closed = True
            waiting, self._waiting = self._waiting, []
            self._ready.notify_all()
        for job in waiting:
            job.future.cancel()

    def _next(self) -> _Job | None:
        with self._ready:
            while not self._waiting and not self._closed:
                self._idle += 1
                self._ready.wait()
                self._idle -= 1
            if self._closed:
                self._threads -= 1
                return None
            job = min(
                self._waiting,
                key=lambda j: (max(self._started[owner] for owner in j.owners), j.order),
            )
            self._waiting.remove(job)
            self._started.update(job.owners)
            return job

    def _done(self, job: _Job) -> None:
        with self._ready:
            self._busy.subtract(job.owners)
            for owner in job.owners:
                if self._busy[owner] <= 0:  # no work left: its next job starts afresh
                    del self._busy[owner]
                    self._started.pop(owner, None)

    def _work(self) -> None:
        self._initializer()
        while (job := self._next()) is not None:
            try:
                if job.future.set_running_or_notify_cancel():
                    try:
                        job.future.set_result(job.fn(*job.args))
                    except BaseException as exc:  # the waiting caller gets it
                        job.future.set_exception(exc)
            finally:
                self._done(job)


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


@dataclass(slots=True)
class _Check:
    """One login or password check, charged to its name and its address while it runs."""

    name: Attempt
    address: Attempt
    account: AccountRecord | None = None
    retry_after: int = 0  # set: throttled, so the password is not checked
    settled: bool = False

    @property
    def owners(self) -> tuple[str, str]:
        """Whom its bcrypt work is queued for (a name may look like an address)."""
        return f"name:{self.name.key}", f"address:{self.address.key}"


def _throttled(retry_after: int) -> Refusal:
    """The refusal of a throttled password check: ``RATE_LIMITED`` with ``retry_after``."""
    return Refusal(
        Why.RATE_LIMITED, "too many failed password checks; try again later", retry_after
    )


class Authenticator:
    def __init__(
        self,
        store: Store,
        settings: LiveSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._live = settings
        self._clock = clock
        auth = settings.now.auth
        workers = auth.max_concurrent_checks or os.cpu_count() or 1
        self._pool = FairPool(workers, initializer=_yield_to_chat)
        # Every address's attempts in flight; its failures while the store cannot count them.
        self._by_address = FailureCounter(auth.max_failures_per_address, auth.failure_window)
        # Every name's attempts in flight; the failures of unknown names, and of real ones
        # while the store cannot count them (real accounts' failures are stored).
        self._by_name = FailureCounter(auth.max_failures, auth.failure_window)

    @property
    def _settings(self) -> AuthSettings:
        return self._live.now.auth

    def close(self) -> None:
        self._pool.close()

    def _bcrypt(self, check: _Check, fn: Callable[..., T], *args: object) -> T:
        """Run a bcrypt computation in the capped, fair pool; the caller waits for it."""
        return self._pool.submit(check.owners, fn, *args).result()

    def login(self, username: str, password: str, address: str) -> LoginAccepted | LoginRefused:
        with self._check(username, address) as check:
            if check.retry_after:
                return LoginRefused(retry_after=check.retry_after)
            account = check.account
            rounds = self._settings.bcrypt_rounds
            if account is None:
                self._bcrypt(check, verify_against_nothing, password, rounds)
                matched = False
            else:
                matched = self._bcrypt(check, verify_password, password, account.password_hash)
            if not matched or account is None or account.disabled:
                self._failed(check)
                return LoginRefused()
            self._passed(
                check,
                lambda alone: self._bookkeep(
                    self._store.record_login, account.id, clear_failures=alone
                ),
            )
            if needs_rehash(account.password_hash, rounds):
                new_hash = self._bcrypt(check, hash_password, password, rounds)
                self._bookkeep(
                    self._store.rehash_password, account.id, account.password_hash, new_hash
                )
            return LoginAccepted(account)

    def change_password(self, account_name: str, old: str, new: str, address: str) -> int:
        """Check ``old``, apply the policy to ``new`` and store it; raise PasswordChangeError.

        ``old`` is checked as a login's password is: charged to the same throttles.
        Returns the account's new credential generation.
        """
        with self._check(account_name, address) as check:
            if check.retry_after:
                raise _throttled(check.retry_after)
            account = check.account
            if account is None or not self._bcrypt(
                check, verify_password, old, account.password_hash
            ):
                self._failed(check)
                raise PasswordChangeError("the old password is not correct", weak=False)
            try:
                check_policy(new, account.name)
            except WeakPasswordError as exc:
                raise PasswordChangeError(str(exc), weak=True) from None
            new_hash = self._bcrypt(check, hash_password, new, self._settings.bcrypt_rounds)
            generation = 0

            def store(alone: bool) -> None:
                nonlocal generation
                generation = self._store.set_password(account.name, new_hash, clear_failures=alone)

            self._passed(check, store)
        log.info("password changed for %s", account.name)
        return generation

    @contextlib.contextmanager
    def _check(self, name: str, address: str) -> Iterator[_Check]:
        """A check of ``name``'s password from ``address``, charged from now until it ends.

        If the block leaves without ``_failed`` or ``_passed`` (throttled, an error), the
        attempt is withdrawn and counts for nothing.
        """
        now = self._clock()
        auth = self._settings  # the throttles follow a reload from the next check on
        self._by_name.limit, self._by_name.window = auth.max_failures, auth.failure_window
        self._by_address.limit = auth.max_failures_per_address
        self._by_address.window = auth.failure_window
        check = _Check(self._by_name.begin(username_key(name)), self._by_address.begin(address))
        try:
            # Exclusive, so every attempt ahead has either stored its failure or is
            # still in flight (counted as one that will fail), never half-way between.
            with self._by_address.exclusive(check.address):
                stored, stored_wait = self._stored(*self._store.address_failures(address))
                check.retry_after = self._by_address.wait(check.address, now, stored, stored_wait)
            if not check.retry_after:
                with self._by_name.exclusive(check.name):
                    if is_valid_username(name):
                        check.account = self._store.get_account(name)
                    stored, stored_wait = self._stored_failures(check.account)
                    check.retry_after = self._by_name.wait(check.name, now, stored, stored_wait)
            yield check
        finally:
            if not check.settled:
                self._withdraw(check)

    def _failed(self, check: _Check) -> None:
        """Store the failure for its name and its address, each under its key's lock.

        Unknown names, and names and addresses while the store cannot count, count in
        memory instead.
        """
        account, window = check.account, self._settings.failure_window
        check.settled = True
        with self._by_name.exclusive(check.name):
            stored = account is not None and self._bookkeep(
                self._store.record_login_failure, account.id, window
            )
            self._by_name.end(check.name, self._clock(), failed=not stored)
        with self._by_address.exclusive(check.address):
            stored = self._bookkeep(self._store.record_address_failure, check.address.key, window)
            self._by_address.end(check.address, self._clock(), failed=not stored)

    def _passed(self, check: _Check, record: Callable[[bool], object]) -> None:
        """End a check whose password was right; ``record(clear_failures)`` stores that.

        It clears the name's failures only if no other attempt on the name overlapped it:
        a success inside a burst of guesses must not wipe the failures around it.
        """
        with self._by_name.exclusive(check.name):
            record(check.name.alone)
            self._withdraw(check)

    def _withdraw(self, check: _Check) -> None:
        """End a check that failed no password (passed, throttled, or an error)."""
        now = self._clock()
        check.settled = True
        self._by_name.end(check.name, now, failed=False)
        self._by_address.end(check.address, now, failed=False)

    @staticmethod
    def _bookkeep(write: Callable[..., object], *args: object, **options: object) -> bool:
        """Run a login's bookkeeping write; if the store fails, log it and carry on.

        A login's outcome never depends on it: while the disk is full or the database
        locked, a right password still lets its owner in to read, and a wrong one gets
        the same refusal as an unknown name (a server_error would tell the two apart).
        """
        try:
            write(*args, **options)
        except Exception:
            log.warning("could not record a login outcome (storage fault)", exc_info=True)
            return False
        return True

    def _stored_failures(self, account: AccountRecord | None) -> tuple[int, int]:
        """The account's stored failures in the current window, and the seconds it has left."""
        if account is None:
            return 0, 0
        return self._stored(account.failed_logins, account.failures_since)

    def _stored(self, failures: int, since: datetime | None) -> tuple[int, int]:
        """Stored ``failures`` counted from ``since``, if that window is still open, and
        the seconds it has left; (0, 0) if it has ended."""
        if since is None:
            return 0, 0
        remaining = (window_end(since, self._settings) - utcnow()).total_seconds()
        if remaining <= 0:
            return 0, 0
        return failures, max(1, math.ceil(remaining))

    def prune_failures(self) -> None:
        """Forget stored address failures whose window has ended (a bounded batch)."""
        self._store.prune_address_failures(self._settings.failure_window)
