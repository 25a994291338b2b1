"""The per-account login throttle's rule, shared by the server and ``chatsecure-admin``.

The store counts an account's failed logins within a window (``record_login_failure``);
once there are ``max_failures`` of them, the account's logins are refused until the window
that the first of them opened has run out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chatsecure.config import AuthSettings


def window_end(failures_since: datetime, auth: AuthSettings) -> datetime:
    """When the failure window that ``failures_since`` opened runs out (naive UTC)."""
    return failures_since + timedelta(seconds=auth.failure_window)


def locked_until(
    failed_logins: int, failures_since: datetime | None, auth: AuthSettings
) -> datetime | None:
    """When the account may log in again (naive UTC, as stored), or None if not throttled.

    A time in the past means the lock has run out.
    """
    if failed_logins < auth.max_failures or failures_since is None:
        return None
    return window_end(failures_since, auth)
