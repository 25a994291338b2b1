from datetime import UTC, datetime

import pytest

from chatsecure.timestamps import format_ts, parse_date


def _reference(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_format_matches_the_contract_example():
    assert format_ts(1795255200123) == "2026-11-21T10:00:00.123Z"


@pytest.mark.parametrize(
    "ms", [0, 999, 59_999, 60_000, 86_399_999, 86_400_000, 951_782_400_000, 4_102_444_799_999]
)
def test_format_agrees_with_datetime_at_the_edges(ms):
    assert format_ts(ms) == _reference(ms)


def test_format_agrees_with_datetime_over_many_times():
    for ms in range(1_795_255_200_000, 1_795_255_200_000 + 90 * 86_400_000, 7_777_777):
        assert format_ts(ms) == _reference(ms)


def test_format_before_the_epoch():
    assert format_ts(-1) == "1969-12-31T23:59:59.999Z"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-11-21", 1795219200000),
        ("2026-11-21T10:00:00Z", 1795255200000),
        ("2026-11-21T10:00:00.123Z", 1795255200123),
        ("2026-11-21t10:00:00.123z", 1795255200123),
        ("2026-11-21T11:00:00.123+01:00", 1795255200123),
        (" 2026-11-21 ", 1795219200000),
    ],
)
def test_parse_date(text, ms):
    assert parse_date(text) == ms


def test_parse_round_trips_format():
    assert parse_date(format_ts(1795255200123)) == 1795255200123


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("21.11.2026", "not a date"),
        ("2026-13-01", "not a date"),
        ("yesterday", "not a date"),
        ("2026-11-21T10:00:00", "no time zone"),
    ],
)
def test_parse_refuses_with_a_reason(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_date(text)
