"""Who is online on the other nodes, as this node knows it.

Fed by presence news from the bus, corrected by reading the database (on a node's
start, when the set of live nodes changes, and every few heartbeats). An account is
online while it has a session on any live node; this view holds the other nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Elsewhere:
    """An account with sessions on other nodes: which nodes, its name and its rooms."""

    name: str
    rooms: set[str]
    nodes: set[str] = field(default_factory=set)


class RemotePresence:
    def __init__(self) -> None:
        self._accounts: dict[int, Elsewhere] = {}

    def __contains__(self, account: int) -> bool:
        return account in self._accounts

    def get(self, account: int) -> Elsewhere | None:
        return self._accounts.get(account)

    def accounts(self) -> dict[int, set[str]]:
        """Account -> its nodes, a copy."""
        return {a: set(e.nodes) for a, e in self._accounts.items()}

    def arrive(self, account: int, node: str, name: str, rooms: Iterable[str]) -> bool:
        """``account`` has a session on ``node``; True if it was on no other node before."""
        known = self._accounts.get(account)
        if known is None:
            known = self._accounts[account] = Elsewhere(name, set(rooms))
        first = not known.nodes
        known.nodes.add(node)
        return first

    def depart(self, account: int, node: str) -> Elsewhere | None:
        """``account`` has no session on ``node`` now; the account if that was its last."""
        known = self._accounts.get(account)
        if known is None or node not in known.nodes:
            return None
        known.nodes.discard(node)
        if known.nodes:
            return None
        del self._accounts[account]
        return known

    def nodes_gone(self, live: set[str]) -> list[tuple[int, Elsewhere]]:
        """Forget nodes not in ``live``; the accounts that were only on those."""
        gone: list[tuple[int, Elsewhere]] = []
        for account, known in list(self._accounts.items()):
            for node in known.nodes - live:
                left = self.depart(account, node)
                if left is not None:
                    gone.append((account, left))
        return gone

    def joined(self, account: int, room: str, joined: bool) -> None:
        known = self._accounts.get(account)
        if known is not None:
            (known.rooms.add if joined else known.rooms.discard)(room)
