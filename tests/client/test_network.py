"""The session and network thread against a real server: login, errors, trust, chat."""

from __future__ import annotations

import socket
import threading

from chatsecure.client.events import Failure, LoggedIn, LoginFailed, SessionEnded, TrustNeeded
from chatsecure.client.network import BAD_CREDENTIALS, Credentials, ServerAddress
from chatsecure.client.profile import load_last_login
from chatsecure.client.session import ChatSession, PasswordResult, Status
from chatsecure.client.state import ConvKey
from chatsecure.client.trust import TrustStore
from chatsecure.passwords import hash_password
from tests.client.helpers import Driver, session_for
from tests.serverproc import HOST, free_port


def logged_in(driver: Driver) -> Driver:
    driver.wait(LoggedIn)
    return driver


def test_login_selects_the_first_room_and_remembers_the_login(
    shared_server, new_user, private_config
):
    user = new_user(("general", "zeta"))
    driver = logged_in(session_for(shared_server, user))
    state = driver.session.state
    assert state is not None
    assert state.current == ConvKey.room("general")
    assert {c.title for c in state.ordered()} >= {"general", "zeta"}
    remembered = load_last_login(private_config)
    assert remembered is not None
    assert (remembered.host, remembered.port, remembered.username) == (
        HOST,
        shared_server.port,
        user,
    )
    assert "password" not in (private_config / "last_login.json").read_text()
    driver.session.close()


def test_send_and_receive_between_two_sessions(shared_server, new_user):
    alice, bob = new_user(), new_user()
    a = logged_in(session_for(shared_server, alice))
    b = logged_in(session_for(shared_server, bob))
    assert a.session.submit("hello bob") is None
    received = b.wait_line("hello bob")
    assert received.sender == alice
    assert not received.own
    assert a.wait_line("hello bob").own
    a.session.close()
    b.session.close()


def test_bad_password_is_reported_without_saying_which_part_was_wrong(shared_server, new_user):
    user = new_user()
    failed = session_for(shared_server, user, password="not the password").wait(LoginFailed)
    assert failed.kind is Failure.BAD_CREDENTIALS
    assert failed.message == BAD_CREDENTIALS


def test_disabled_account_gets_the_same_answer(shared_server, new_user):
    user = new_user()
    shared_server.store.set_disabled(user, True)
    failed = session_for(shared_server, user).wait(LoginFailed)
    assert failed.kind is Failure.BAD_CREDENTIALS
    assert "disabled" in failed.message


def test_throttled_login_says_how_long_to_wait(shared_server, new_user):
    user = new_user()
    for _ in range(3):
        session_for(shared_server, user, password="wrong password").wait(LoginFailed)
    failed = session_for(shared_server, user).wait(LoginFailed)
    assert failed.kind is Failure.THROTTLED
    assert failed.retry_after is not None
    assert failed.retry_after > 0
    assert "Try again in" in failed.message


def test_unreachable_server():
    session = ChatSession(
        ServerAddress(HOST, free_port(), None), Credentials("alice", "x" * 10), TrustStore()
    )
    session.start()
    failed = Driver(session).wait(LoginFailed)
    assert failed.kind is Failure.UNREACHABLE
    assert "Cannot reach the server" in failed.message


def test_a_server_that_does_not_speak_tls():
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer_in_plain_text() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer_in_plain_text, daemon=True).start()
        session = ChatSession(
            ServerAddress(HOST, port, None), Credentials("alice", "x" * 10), TrustStore()
        )
        session.start()
        failed = Driver(session).wait(LoginFailed)
    assert failed.kind is Failure.TLS_FAILURE


def test_certificate_from_another_ca_is_not_trusted(shared_server, new_user, other_certs):
    user = new_user()
    address = ServerAddress(HOST, shared_server.port, other_certs.ca)
    session = ChatSession(address, Credentials(user, "irrelevant-pw"), TrustStore())
    session.start()
    failed = Driver(session).wait(LoginFailed)
    assert failed.kind is Failure.UNTRUSTED
    assert "not trusted" in failed.message


def test_trust_on_first_use_then_refuse_a_changed_certificate(own_server, other_certs, tmp_path):
    own_server.add_user("tofu")
    trust = TrustStore(tmp_path / "known.json")
    first = session_for(own_server, "tofu", ca=False, trust=trust)
    needed = first.wait(TrustNeeded)
    assert needed.fingerprint.count(":") == 31
    first.session.trust_and_retry(needed.fingerprint)
    first.wait(LoggedIn)
    assert trust.pinned(HOST, own_server.port) == needed.fingerprint
    first.session.close()

    own_server.restart(other_certs)
    again = session_for(own_server, "tofu", ca=False, trust=trust)
    failed = again.wait(LoginFailed)
    assert failed.kind is Failure.CERT_CHANGED
    assert "CHANGED" in failed.message
    assert str(trust.path) in failed.message
    assert trust.pinned(HOST, own_server.port) == needed.fingerprint  # still the old pin


def test_reconnect_fills_the_gap_without_duplicates(own_server):
    own_server.add_user("reader")
    own_server.add_user("writer")
    reader = logged_in(session_for(own_server, "reader"))
    writer = logged_in(session_for(own_server, "writer"))
    writer.session.submit("before the outage")
    reader.wait_line("before the outage")

    own_server.kill()
    reader.until(lambda: not reader.session.connected)
    assert any(
        isinstance(u, Status) and u.text and u.text.startswith("Reconnecting")
        for u in reader.updates
    )
    own_server.start()
    writer.until(lambda: writer.session.connected)
    writer.wait(LoggedIn)
    for n in range(60):  # more than the 50 sent unasked on login: needs history after
        writer.session.submit(f"missed {n}")
    reader.until(lambda: reader.session.connected, timeout=40)
    assert reader.session.state is not None
    conv = reader.session.state.conversations[ConvKey.room("general")]
    reader.until(lambda: sum(1 for line in conv.lines if line.id) == 61)
    texts = [line.text for line in conv.lines if line.id]
    assert texts == ["before the outage", *(f"missed {n}" for n in range(60))]
    ids = [line.id for line in conv.lines if line.id]
    assert ids == sorted(set(ids))
    reader.session.close()
    writer.session.close()


def test_change_password(shared_server, new_user):
    user = new_user()
    driver = logged_in(session_for(shared_server, user))
    driver.session.change_password("wrong-old-password", "a-new-Secret-1")
    assert not driver.wait(PasswordResult).ok
    driver.session.change_password(f"pw-{user}-Secret!", "a-new-Secret-1")
    assert driver.wait(PasswordResult).ok
    driver.session.close()
    logged_in(session_for(shared_server, user, password="a-new-Secret-1")).session.close()


def test_disabled_while_logged_in_ends_the_session(shared_server, new_user):
    user = new_user()
    driver = logged_in(session_for(shared_server, user))
    shared_server.store.set_disabled(user, True)
    ended = driver.wait(SessionEnded, timeout=20)
    assert "disabled" in ended.message


def test_a_password_changed_elsewhere_ends_the_session_without_reconnecting(
    shared_server, new_user
):
    user = new_user()
    driver = logged_in(session_for(shared_server, user))
    shared_server.store.set_password(user, hash_password("another-Secret-2", 4))
    ended = driver.wait(SessionEnded, timeout=20)
    assert "password was changed" in ended.message
    assert not any(
        isinstance(u, Status) and u.text and u.text.startswith("Reconnecting")
        for u in driver.updates
    )
