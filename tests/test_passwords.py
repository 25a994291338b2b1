import time
from collections.abc import Callable

import pytest

from chatsecure.passwords import (
    WeakPasswordError,
    check_policy,
    hash_password,
    needs_rehash,
    verify_against_nothing,
    verify_password,
)

ROUNDS = 10


def test_hash_and_verify():
    stored = hash_password("correct horse battery", ROUNDS)
    assert "correct horse" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)


def test_64_non_ascii_characters_work():
    password = "пароль-密码-كلمة-ñ" * 4  # 64 characters, well over 72 bytes of UTF-8
    assert len(password) == 64
    assert len(password.encode()) > 72
    check_policy(password)
    stored = hash_password(password, ROUNDS)
    assert verify_password(password, stored)
    assert not verify_password(password[:-1], stored)


def test_long_passwords_differing_only_after_byte_72_differ():
    common = "x" * 72
    stored = hash_password(common + "A", ROUNDS)
    assert verify_password(common + "A", stored)
    assert not verify_password(common + "B", stored)
    assert not verify_password(common, stored)


def test_a_malformed_hash_never_matches():
    assert not verify_password("anything at all", "")
    assert not verify_password("anything at all", "$2b$10$plainbcryptwithoutscheme")


def test_unknown_account_costs_about_as_much_as_a_real_check():
    stored = hash_password("correct horse battery", ROUNDS)
    verify_against_nothing("warm up the cache", ROUNDS)

    def cost(check: Callable[[], object]) -> float:
        start = time.perf_counter()
        for _ in range(3):
            check()
        return time.perf_counter() - start

    real = cost(lambda: verify_password("wrong guess!", stored))
    unknown = cost(lambda: verify_against_nothing("wrong guess!", ROUNDS))
    assert verify_against_nothing("correct horse battery", ROUNDS) is False
    assert real / 3 < unknown < real * 3


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 8"),
        ("        ", "white space"),
        ("aaaaaaaaaa", "single character"),
        ("Alice123", "the username"),
        ("x" * 1025, "at most"),
    ],
)
def test_policy_refuses(password, problem):
    with pytest.raises(WeakPasswordError, match=problem):
        check_policy(password, "alice123")


def test_policy_accepts_a_passphrase():
    check_policy("correct horse battery staple", "alice")


def test_needs_rehash_when_the_cost_changes():
    stored = hash_password("correct horse battery", ROUNDS)
    assert not needs_rehash(stored, ROUNDS)
    assert needs_rehash(stored, 11)
    assert needs_rehash("$2b$10$legacy", ROUNDS)
