"""Property tests: whatever bytes arrive, the protocol answers by the contract."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from chatsecure.protocol import (
    ByeReason,
    ErrorCode,
    LineFramer,
    Message,
    RemoteProtocolError,
    ServerConnection,
    Violation,
    encode,
    parse_server_frame,
)

CAP = 256
REQUEST_TYPES = [
    "login",
    "send",
    "join",
    "leave",
    "rooms",
    "who",
    "history",
    "passwd",
    "ping",
    "pong",
    "logout",
    "create",
    "invite",
    "topic",
    "role",
    "kick",
    "ban",
    "unban",
    "edit",
    "delete",
    "read",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)
# Frames that look like requests, so the checks behind the JSON decoding get exercised.
request_like = st.builds(
    lambda kind, fields: json.dumps({**fields, "type": kind}).encode() + b"\n",
    st.sampled_from(REQUEST_TYPES),
    st.dictionaries(
        st.sampled_from(
            [
                "req",
                "room",
                "to",
                "with",
                "text",
                "username",
                "password",
                "before",
                "after",
                "limit",
                "old",
                "new",
                "user",
                "topic",
                "private",
                "role",
                "reason",
                "id",
                "up_to",
            ]
        ),
        json_values,
    ),
)
chunks = st.lists(
    st.binary(max_size=CAP * 2) | request_like | st.just(b"\n") | st.just(b"\r\n"),
    max_size=30,
)


@settings(max_examples=300, deadline=None)  # timing varies with example size
@given(chunks, st.booleans())
def test_any_bytes_give_events_or_contract_violations(pieces: list[bytes], logged_in: bool) -> None:
    connection = ServerConnection(max_frame_bytes=CAP, max_text_chars=50)
    if logged_in:
        connection.login_succeeded()
    for piece in pieces:
        connection.receive_data(piece)
        while (event := connection.next_event()) is not None:
            if isinstance(event, Violation):
                assert ErrorCode(event.error.code) is not ErrorCode.SERVER_ERROR
                assert event.close is None or ByeReason(event.close)
                # The reply must itself be encodable, echoed req included.
                connection.send(event.error)
            else:
                assert type(event).TYPE in REQUEST_TYPES
        assert connection.buffered_bytes < CAP


@given(st.lists(st.binary(max_size=CAP * 3), max_size=20))
def test_framer_holds_less_than_its_cap_once_drained(pieces: list[bytes]) -> None:
    framer = LineFramer(CAP)
    codes = []
    for piece in pieces:
        framer.feed(piece)
        try:
            while (line := framer.next_line()) is not None:
                assert len(line) < CAP
        except RemoteProtocolError as error:
            codes.append(error.code)
        assert framer.buffered_bytes < CAP
    assert set(codes) <= {ErrorCode.FRAME_TOO_LARGE}


@given(
    st.integers(min_value=1),
    st.text(),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}", fullmatch=True),
    st.text(),
)
def test_any_message_round_trips(id_: int, ts: str, sender: str, text: str) -> None:
    # Lone surrogates cannot be UTF-8; the server never accepts them into a message.
    text = text.encode("utf-8", "replace").decode()
    ts = ts.encode("utf-8", "replace").decode()
    message = Message(id=id_, ts=ts, from_=sender, text=text, room="general")
    encoded = encode(message)
    assert encoded.count(b"\n") == 1
    assert parse_server_frame(encoded[:-1]) == message
