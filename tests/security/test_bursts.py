"""Guesses at once: a burst gets no more password checks than the throttle allows.

``test_brute_force.py`` spreads guesses out in time and over addresses. Here they come
all at once, from many connections, so that every one of them is in flight before the
first is answered: the throttle must count attempts from before their check, not after.
``passwd`` checks a password too, so it is charged to the same throttles. And the
bcrypt queue is fair: one address keeping it busy does not make other people's logins
wait behind all of its work.

One server for the module, one bcrypt check at a time; each test has its own users and
its own addresses (127.0.6.x and 127.0.7.x, all loopback).
"""

from __future__ import annotations

import selectors
import sqlite3
import time
from collections import Counter
from typing import Any

from tests.e2e.client import ChatClient
from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_error
from tests.security.conftest import client_from
from tests.serverproc import password_of

MAX_FAILURES = 5
PER_ADDRESS = 10
SERVER_CONFIG = {
    "auth": {
        "bcrypt_rounds": 10,
        "max_failures": MAX_FAILURES,
        "failure_window": 900,
        "max_failures_per_address": PER_ADDRESS,
        "max_concurrent_checks": 1,
    }
}


def stored_failures(server: ServerProcess, user: str) -> int:
    """The account's failure count as the database holds it."""
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        (count,) = db.execute(
            "SELECT failed_logins FROM accounts WHERE name_key = ?", (user.lower(),)
        ).fetchone()
    return int(count)


def burst(clients: list[ChatClient], frames: list[dict[str, Any]]) -> Counter[str]:
    """Send every frame at once (one per client, all before any reply); count the outcomes."""
    for n, (client, frame) in enumerate(zip(clients, frames, strict=True)):
        client.send({**frame, "req": n})
    replies = [client.expect(None, 30, req=n) for n, client in enumerate(clients)]
    return Counter(r["code"] if r["type"] == "error" else r["type"] for r in replies)


def login_from(server: ServerProcess, source: str, user: str, password: str) -> dict[str, Any]:
    return client_from(server, source).request(
        {"type": "login", "username": user, "password": password}
    )


def test_a_burst_of_guesses_from_many_addresses_gets_no_more_checks_than_the_limit(
    server: ServerProcess,
) -> None:
    """21 logins at once from 21 addresses, the right password last: at most 5 are checked."""
    victim = server.new_user()
    clients = [client_from(server, f"127.0.6.{n}") for n in range(1, 22)]
    guesses = [f"guess-{n:06}" for n in range(20)] + [password_of(victim)]
    counts = burst(clients, [{"type": "login", "username": victim, "password": p} for p in guesses])
    checked = counts["auth_failed"] + counts["welcome"]
    assert 1 <= checked <= MAX_FAILURES, counts
    assert counts["rate_limited"] == 21 - checked, counts
    assert stored_failures(server, victim) == counts["auth_failed"]  # all counted, none wiped


def test_a_burst_of_guesses_from_one_address_gets_no_more_checks_than_its_limit(
    server: ServerProcess,
) -> None:
    users = server.new_users(PER_ADDRESS + 5)
    clients = [client_from(server, "127.0.6.100") for _ in users]
    counts = burst(
        clients, [{"type": "login", "username": u, "password": "guess-123456"} for u in users]
    )
    assert 1 <= counts["auth_failed"] <= PER_ADDRESS, counts
    assert counts["rate_limited"] == len(users) - counts["auth_failed"], counts


def test_a_success_inside_a_burst_does_not_wipe_the_failures_around_it(
    server: ServerProcess,
) -> None:
    """Four guesses and the right password with them: the guesses stay counted."""
    victim = server.new_user()
    clients = [client_from(server, f"127.0.6.{n}") for n in range(30, 35)]
    guesses = [f"guess-{n:06}" for n in range(4)] + [password_of(victim)]
    counts = burst(clients, [{"type": "login", "username": victim, "password": p} for p in guesses])
    assert counts["welcome"] == 1, counts
    assert stored_failures(server, victim) == counts["auth_failed"] == 4, counts
    # So one more wrong guess locks the account, as five failures in a row would.
    assert_error(login_from(server, "127.0.6.40", victim, "guess-654321"), "auth_failed")
    assert_error(login_from(server, "127.0.6.41", victim, password_of(victim)), "rate_limited")


def test_passwd_guesses_are_throttled_like_logins(server: ServerProcess) -> None:
    victim = server.new_user()
    session = client_from(server, "127.0.6.50")  # e.g. left logged in on a shared computer
    session.login_and_settle(victim, password_of(victim))
    wrong = {"type": "passwd", "old": "guess-123456", "new": "a new password 1"}
    replies = [session.request(wrong) for _ in range(12)]
    assert [r["code"] for r in replies] == ["auth_failed"] * 5 + ["rate_limited"] * 7
    assert all(0 < r["retry_after"] <= 900 for r in replies[5:])
    # Locked as under login guessing: even the right old password is not checked now,
    right = {"type": "passwd", "old": password_of(victim), "new": "a new password 1"}
    assert_error(session.request(right), "rate_limited")
    # ...and neither are logins, from anywhere.
    assert_error(login_from(server, "127.0.6.51", victim, password_of(victim)), "rate_limited")


def test_passwd_guesses_count_against_the_address(server: ServerProcess) -> None:
    per_account = MAX_FAILURES
    *guessed, last = server.new_users(PER_ADDRESS // per_account + 1)
    wrong = {"type": "passwd", "old": "guess-123456", "new": "a new password 1"}
    for user in guessed:
        session = client_from(server, "127.0.6.60")
        session.login_and_settle(user, password_of(user))
        for _ in range(per_account):
            assert_error(session.request(wrong), "auth_failed")
    # The address has had its PER_ADDRESS failures: throttled now, for logins too.
    assert_error(login_from(server, "127.0.6.60", last, password_of(last)), "rate_limited")


def first_replies(clients: list[ChatClient], timeout: float = 30) -> list[tuple[int, str]]:
    """Each client's next frame, as (client index, type or error code), in arrival order."""
    replies: list[tuple[int, str]] = []
    with selectors.DefaultSelector() as selector:
        for index, client in enumerate(clients):
            selector.register(client.sock, selectors.EVENT_READ, index)
        deadline = time.monotonic() + timeout
        while len(replies) < len(clients):
            assert time.monotonic() < deadline, f"replies missing; got {replies}"
            for key, _ in selector.select(1.0):
                frame = clients[key.data].next_frame(timeout)
                replies.append((key.data, frame.get("code", frame["type"])))
                selector.unregister(key.fileobj)
    return replies


def test_bcrypt_work_of_one_address_does_not_queue_ahead_of_others_logins(
    server: ServerProcess,
) -> None:
    """10 sessions from one address ask for a bcrypt check at once, then another user logs in.

    The server runs one check at a time. Each ``passwd`` with the right old password and
    a weak new one costs exactly one check and is answered ``weak_password`` (nothing is
    changed or counted as a failure). First come, first served, the login would wait
    for the 10 checks queued before it; served fairly, for at most the one running.
    Counted, not timed: the replies that arrive before the login's ``welcome``.
    """
    hogs = 10
    rounds = 2
    names = server.new_users(hogs + rounds)
    sessions = []
    for user in names[:hogs]:
        session = client_from(server, "127.0.7.1", timeout=30)
        session.login_and_settle(user, password_of(user))
        sessions.append(session)
    ahead_of_login = []
    for n, user in enumerate(names[hogs:], start=2):
        newcomer = client_from(server, f"127.0.7.{n}", timeout=30)
        for session, hog in zip(sessions, names, strict=False):
            session.send({"type": "passwd", "old": password_of(hog), "new": "short"})
        newcomer.send({"type": "login", "username": user, "password": password_of(user)})
        replies = first_replies([*sessions, newcomer])
        assert sorted(replies) == [(i, "weak_password") for i in range(hogs)] + [(hogs, "welcome")]
        ahead_of_login.append(replies.index((hogs, "welcome")))
    assert max(ahead_of_login) <= 2, ahead_of_login
