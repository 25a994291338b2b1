"""Password hashing and policy.

bcrypt reads at most 72 bytes of its input, and 64 characters of many scripts are more
than 72 bytes of UTF-8. Rejecting those would refuse reasonable passwords, and letting
bcrypt truncate would make two long passwords that differ only after byte 72 equal. So,
as OWASP's password storage cheat sheet describes, the password is pre-hashed: the
NFKC-normalised UTF-8 bytes go through HMAC-SHA256 keyed with the bcrypt salt, and the
base64 of that digest (44 bytes, no NUL) is what bcrypt hashes. Keying the HMAC with the
per-hash salt means a leaked hash cannot be "shucked" against a plain SHA-256 hash of the
same password found elsewhere. The stored string carries a scheme prefix so the scheme
can change later without ambiguity.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import unicodedata

import bcrypt

SCHEME = "$bcrypt-sha256-v1$"
MIN_LENGTH = 8
MAX_LENGTH = 1024
_SALT_LENGTH = 29  # "$2b$" + cost + "$" + 22 salt characters


class WeakPasswordError(ValueError):
    """The password does not meet the policy; the message says what to change."""


def check_policy(password: str, username: str | None = None) -> None:
    """Raise WeakPasswordError unless ``password`` is acceptable for ``username``."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"password must be at most {MAX_LENGTH} characters")
    if not password.strip():
        raise WeakPasswordError("password must not be only white space")
    if len(set(password)) == 1:
        raise WeakPasswordError("password must not repeat a single character")
    if username is not None and password.casefold() == username.casefold():
        raise WeakPasswordError("password must not be the username")


def _prehash(password: str, salt: bytes) -> bytes:
    normalized = unicodedata.normalize("NFKC", password).encode("utf-8")
    digest = hmac.new(salt, normalized, hashlib.sha256).digest()
    return base64.b64encode(digest)


def hash_password(password: str, rounds: int) -> str:
    """A storable hash of ``password`` at bcrypt cost ``rounds``."""
    salt = bcrypt.gensalt(rounds=rounds)
    hashed = bcrypt.hashpw(_prehash(password, salt), salt)
    return SCHEME + hashed.decode("ascii")


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; a malformed hash never matches."""
    if not stored.startswith(SCHEME):
        return False
    hashed = stored[len(SCHEME) :].encode("ascii")
    salt = hashed[:_SALT_LENGTH]
    try:
        return bcrypt.checkpw(_prehash(password, salt), hashed)
    except ValueError:
        return False


@functools.lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> str:
    return hash_password("not a real password, only spends the time", rounds)


def verify_against_nothing(password: str, rounds: int) -> bool:
    """Spend the time of a real check, for an account that does not exist; always False.

    The cost matches the configured rounds, so an unknown name answers in the same
    time as a wrong password and cannot be told apart by timing.
    """
    verify_password(password, _dummy_hash(rounds))
    return False


def needs_rehash(stored: str, rounds: int) -> bool:
    """Whether ``stored`` was made with another scheme or cost than configured now."""
    if not stored.startswith(SCHEME):
        return True
    cost = stored[len(SCHEME) + 4 : len(SCHEME) + 6]
    return cost != f"{rounds:02d}"
