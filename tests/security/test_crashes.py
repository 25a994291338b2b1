"""SIGKILL under concurrent load, round after round, on the same data.

``tests/e2e/test_durability.py`` kills once. Here the server is killed in the middle of
concurrent room and direct sends three times in a row, each time restarting on the
database the previous kill left behind: no acknowledged message of any round is lost,
the integrity check is clean after every kill, and ids keep increasing.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import ServerFactory
from tests.e2e.helpers import join
from tests.e2e.test_durability import DEADLINE, AckLog, integrity, keep_sending, stored_messages

pytestmark = pytest.mark.slow

ROUNDS = 3
ROOM = "crash-rounds"


def test_repeated_sigkill_under_load_loses_no_acknowledged_message(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    names = server.new_users(4)
    acked: dict[int, str] = {}
    highest = 0
    for round_number in range(ROUNDS):
        if round_number:
            server.close_clients()
            server.start()  # on whatever the last kill left
        clients = [server.login(name) for name in names]
        for client in clients[:3]:
            join(client, ROOM)
        # Every round's acks must still be there, before the new round adds more.
        stored = stored_messages(clients[0], room=ROOM)
        stored.update(stored_messages(clients[3], **{"with": names[2]}))
        lost = {i: t for i, t in acked.items() if stored.get(i) != t}
        assert not lost, f"round {round_number}: {len(lost)} acknowledged messages lost"

        targets = [({"room": ROOM}, "r0"), ({"room": ROOM}, "r1"), ({"to": names[3]}, "d2")]
        log = AckLog(len(targets))
        with ThreadPoolExecutor(len(targets)) as pool:
            futures = [
                pool.submit(keep_sending, client, target, f"k{round_number}{label}", log)
                for client, (target, label) in zip(clients, targets, strict=False)
            ]
            assert log.enough.wait(DEADLINE), "the senders never got going"
            server.kill()
            assert all(f.result(DEADLINE) for f in futures)
        assert integrity(server) == "ok", f"round {round_number}"
        assert min(log.acked) > highest, "ids went backwards after a restart"
        highest = max(log.acked)
        acked.update(log.acked)

    server.close_clients()
    server.start()
    reader = server.login(names[0])
    stored = stored_messages(reader, room=ROOM)
    stored.update(stored_messages(server.login(names[3]), **{"with": names[2]}))
    lost = {i: t for i, t in acked.items() if stored.get(i) != t}
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged messages lost"
    assert "Traceback" not in server.output()
