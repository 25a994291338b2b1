"""The file-transfer scenario: does sharing files delay other users' chat?

Twenty chatters talk in one room (5 messages a second each) while five other users each
upload a file of ``FILE_MIB`` MiB into another room, the way a client does: offer, then
chunks with up to 8 unacknowledged. The chatters' latencies before and during the
uploads are compared; the upload rate is reported beside them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.run import Fleet, Scale, percentile, reduce, say, spec
from bench.servers import HOST, PASSWORD, ChatServer

FILE_MIB = {"smoke": 1, "default": 5, "full": 25}
UPLOADERS = 5
CHATTERS = 20
CHAT_RATE = 5.0  # messages a second per chatter
QUIET_BEFORE = 2.0  # seconds of chat measured before the uploads start
WINDOW = 8  # chunks in flight, the most the contract allows


class Uploader:
    """A minimal blocking client of the contract: login, offer, chunks, acks."""

    def __init__(self, port: int, user: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection((HOST, port))
        self.sock = context.wrap_socket(raw)
        self.lines = self.sock.makefile("rb")
        self.reply({"type": "login", "username": user, "password": PASSWORD, "req": "login"})

    def send(self, frame: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(frame, separators=(",", ":")).encode() + b"\n")

    def read_reply(self, req: str) -> dict[str, Any]:
        while True:
            frame = json.loads(self.lines.readline())
            if frame.get("req") == req:
                return frame  # type: ignore[no-any-return]

    def reply(self, frame: dict[str, Any]) -> dict[str, Any]:
        self.send(frame)
        return self.read_reply(str(frame["req"]))

    def upload(self, room: str, data: bytes) -> None:
        offer = {
            "type": "file_offer",
            "room": room,
            "name": "payload.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "req": "offer",
        }
        slot = self.reply(offer)
        if slot.get("type") != "file_slot":
            raise RuntimeError(f"offer refused: {slot}")
        size = slot["chunk_bytes"]
        in_flight: list[str] = []
        for offset in range(0, len(data), size):
            if len(in_flight) == WINDOW:
                self._ack(in_flight.pop(0))
            req = f"c{offset}"
            piece = base64.b64encode(data[offset : offset + size]).decode()
            self.send(
                {
                    "type": "file_chunk",
                    "upload": slot["upload"],
                    "offset": offset,
                    "data": piece,
                    "req": req,
                }
            )
            in_flight.append(req)
        for req in in_flight:
            self._ack(req)

    def _ack(self, req: str) -> None:
        ok = self.read_reply(req)
        if ok.get("type") != "ok":
            raise RuntimeError(f"chunk refused: {ok}")

    def close(self) -> None:
        self.sock.close()


def file_transfer(work: Path, scale: Scale) -> dict[str, Any]:
    size = FILE_MIB[scale.name] * 1024 * 1024
    server = ChatServer(
        work / "chat-files",
        extra={"files": {"dir": "files", "max_bytes": size, "quota_bytes": 100 * size}},
    )
    chatters = [f"fc{i}" for i in range(CHATTERS)]
    uploaders = [f"fu{i}" for i in range(UPLOADERS)]
    server.add_users(chatters, ["talk"])
    server.add_users(uploaders, ["drop"])
    server.start()
    fleet = Fleet([spec("chat", server.port)])
    runs = []
    try:
        fleet.call(0, "login", users=chatters)
        for rep in range(scale.reps):
            payloads = [os.urandom(size) for _ in uploaders]
            clients = [Uploader(server.port, user) for user in uploaders]
            # Chat long enough to cover the uploads at half the ~10 MiB/s they take at least.
            seconds = QUIET_BEFORE + max(3.0, 2 * UPLOADERS * size / (10 * 1024 * 1024)) + 1
            fleet.ask(0, "chat", room="talk", rate=CHAT_RATE, seconds=seconds, chars=64)
            time.sleep(QUIET_BEFORE)
            start = time.monotonic()
            with ThreadPoolExecutor(UPLOADERS) as pool:
                list(pool.map(lambda c, d: c.upload("drop", d), clients, payloads))
            end = time.monotonic()
            for client in clients:
                client.close()
            chat = fleet.answer(0)
            if end > chat["start"] + seconds:
                raise RuntimeError(f"the uploads took {end - start:.1f} s, longer than the chat")
            during = [lat for t, lat in chat["samples"] if start <= t <= end]
            before = [lat for t, lat in chat["samples"] if t < start]
            runs.append(
                {
                    "chat_p99_during_ms": 1000 * percentile(during, 0.99),
                    "chat_p50_during_ms": 1000 * percentile(during, 0.5),
                    "chat_p99_before_ms": 1000 * percentile(before, 0.99),
                    "chat_p50_before_ms": 1000 * percentile(before, 0.5),
                    "chat_deliveries_during": float(len(during)),
                    "upload_mib_per_s": UPLOADERS * size / (1024 * 1024) / (end - start),
                    "upload_seconds": end - start,
                }
            )
            say(
                f"  files run {rep + 1}: {UPLOADERS} x {FILE_MIB[scale.name]} MiB in "
                f"{end - start:.1f} s ({runs[-1]['upload_mib_per_s']:.1f} MiB/s); chat p99 "
                f"{runs[-1]['chat_p99_during_ms']:.1f} ms during, "
                f"{runs[-1]['chat_p99_before_ms']:.1f} ms before "
                f"({len(during)} deliveries during)"
            )
        return {"chatsecure": reduce(runs), "file_mib": FILE_MIB[scale.name]}
    finally:
        fleet.close()
        server.stop()
