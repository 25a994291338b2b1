"""A generator process: one ``Swarm`` of clients, driven by commands over a pipe.

Each command is a tuple ``(name, kwargs)`` and gets one reply (a dict). Between commands
the worker keeps polling, so servers' pings are answered and frames are drained. Every
loop is bounded in time. Messages carry ``~S<seq>~`` in their text, so a receiver finds
the sequence number with two ``find`` calls, whichever server and framing carried it.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Callable, Sequence
from functools import partial
from multiprocessing.connection import Connection as Pipe
from typing import Any

from bench.swarm import Conn, Swarm, by_line, raise_fd_limit

MARK = b"~S"
CHAT_MESSAGE = b'{"type":"message"'
CHAT_PING = b'{"type":"ping"'


def login_timeout(count: int) -> float:
    """How long ``count`` logins may take before the run fails: a minute, and 0.25 s
    each (one bcrypt check at cost 12 on one core, the slowest any scenario asks for).

    A lost reply then fails a smoke run in about a minute, not after the test's timeout.
    """
    return 60.0 + 0.25 * count


def seq_of(line: bytes) -> int:
    """The sequence number in a message line, or -1."""
    i = line.find(MARK)
    if i < 0:
        return -1
    j = line.find(b"~", i + 2)
    return int(line[i + 2 : j])


def _past(moment: float) -> bool:
    return time.monotonic() >= moment


def _in(seconds: float) -> float:
    return time.monotonic() + seconds


def _logged_in(batch: list[Conn]) -> bool:
    return all(c.ready or c.closed for c in batch)


def body(seq: int, chars: int) -> str:
    head = f"~S{seq}~"
    return head + "x" * max(chars - len(head), 0)


class Dialect(abc.ABC):
    """How one wire protocol logs in, sends to a room and shows a room message."""

    def __init__(self, swarm: Swarm) -> None:
        self.swarm = swarm

    @abc.abstractmethod
    def greet(self, conn: Conn) -> None: ...

    @abc.abstractmethod
    def login_line(self, conn: Conn, line: bytes) -> bool:
        """Handle a line before login completes; True once this connection is in."""
        ...

    @abc.abstractmethod
    def is_message(self, line: bytes) -> bool: ...

    @abc.abstractmethod
    def is_ack(self, line: bytes) -> bool: ...

    @abc.abstractmethod
    def answer_ping(self, conn: Conn, line: bytes) -> None: ...

    @abc.abstractmethod
    def pinged(self, block: bytes) -> bool:
        """Whether a block of lines may hold a ping to answer."""
        ...

    @abc.abstractmethod
    def say(self, room: str, text: str, req: int) -> bytes: ...


class ChatDialect(Dialect):
    """chatsecure's JSON lines."""

    def greet(self, conn: Conn) -> None:
        self.swarm.send(conn, self.login(conn))

    @staticmethod
    def login(conn: Conn) -> bytes:
        frame = {"type": "login", "username": conn.user, "password": PASSWORD, "req": 1}
        return json.dumps(frame).encode() + b"\n"

    def login_line(self, conn: Conn, line: bytes) -> bool:
        if line.startswith(b'{"type":"welcome"'):
            conn.ready = True
        elif line.startswith(b'{"type":"error"'):
            raise RuntimeError(f"login refused for {conn.user}: {line[:200]!r}")
        return conn.ready

    def is_message(self, line: bytes) -> bool:
        return line.startswith(CHAT_MESSAGE)

    def is_ack(self, line: bytes) -> bool:
        return line.startswith(b'{"type":"ok"')

    def answer_ping(self, conn: Conn, line: bytes) -> None:
        if line.startswith(CHAT_PING):
            self.swarm.send(conn, b'{"type":"pong"}\n')

    def pinged(self, block: bytes) -> bool:
        return CHAT_PING in block

    def say(self, room: str, text: str, req: int) -> bytes:
        return b'{"type":"send","room":"%s","text":"%s","req":%d}\n' % (
            room.encode(),
            text.encode(),
            req,
        )


class IrcDialect(Dialect):
    """RFC 1459 lines: PASS/NICK/USER, JOIN, PRIVMSG; the rooms are channels.

    The same lines for ngircd and chatsecure's IRC port: ``PASS`` is ngircd's server
    password and chatsecure's account password (the nick is the account). chatsecure
    joins an account to its rooms itself, so there the ``JOIN`` finds them joined; either
    way one ``366`` per channel ends the login.
    """

    def __init__(self, swarm: Swarm, channels: dict[str, list[str]]) -> None:
        super().__init__(swarm)
        self.channels = channels

    def greet(self, conn: Conn) -> None:
        nick = conn.user
        self.swarm.send(
            conn, f"PASS {PASSWORD}\r\nNICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode()
        )

    def login_line(self, conn: Conn, line: bytes) -> bool:
        parts = line.split(b" ", 3)
        code = parts[1] if len(parts) > 1 else b""
        wanted = self.channels.get(conn.user, [])
        if code == b"001":
            if wanted:
                joins = ",".join(f"#{c}" for c in wanted)
                self.swarm.send(conn, f"JOIN {joins}\r\n".encode())
            else:
                conn.ready = True
        elif code == b"366":  # end of NAMES: one channel joined
            conn.state += 1
            if conn.state >= len(wanted):
                conn.ready = True
        elif code[:1] in (b"4", b"5"):
            raise RuntimeError(f"IRC refused {conn.user}: {line[:200]!r}")
        else:
            self.answer_ping(conn, line)
        return conn.ready

    def is_message(self, line: bytes) -> bool:
        return b" PRIVMSG " in line

    def is_ack(self, line: bytes) -> bool:
        return False

    def answer_ping(self, conn: Conn, line: bytes) -> None:
        if line.startswith(b"PING"):
            self.swarm.send(conn, b"PONG" + line[4:].rstrip(b"\r") + b"\r\n")

    def pinged(self, block: bytes) -> bool:
        return block.startswith(b"PING") or b"\nPING" in block

    def say(self, room: str, text: str, req: int) -> bytes:
        return f"PRIVMSG #{room} :{text}\r\n".encode()


PASSWORD = ""  # set from the spec: the bench's one password for every account


class Agent:
    """Runs the commands of one worker process against its swarm."""

    def __init__(self, pipe: Pipe, spec: dict[str, Any], marks: Any) -> None:
        global PASSWORD  # noqa: PLW0603 - one password per run, read by the dialect
        PASSWORD = spec.get("password", "")
        self.pipe = pipe
        self.spec = spec
        self.marks = marks  # shared array of receivers' "all delivered up to" watermarks
        self.slot: int = spec.get("slot", -1)
        self.swarm = Swarm()
        self.host: str = spec["host"]
        self.port: int = spec["port"]
        self.dialect: Dialect = (
            IrcDialect(self.swarm, spec.get("channels", {}))
            if spec["dialect"] == "irc"
            else ChatDialect(self.swarm)
        )

    # -- the command loop -----------------------------------------------------------

    def serve(self) -> None:
        handlers: dict[str, Callable[..., dict[str, Any]]] = {
            "login": self.login,
            "receive": self.receive,
            "fanout_send": self.fanout_send,
            "rate_send": self.rate_send,
            "chat": self.chat,
            "storm": self.storm,
            "ingest": self.ingest,
            "history": self.history,
            "oper": self.oper,
        }
        while True:
            while not self.pipe.poll(0):
                self.swarm.poll(0.05)
            name, kwargs = self.pipe.recv()
            if name == "close":
                self.swarm.close_all()
                self.pipe.send({})
                return
            try:
                self.pipe.send(handlers[name](**kwargs))
            except Exception as exc:  # reported to the parent, which fails the scenario
                self.pipe.send({"error": f"{type(exc).__name__}: {exc}"})

    def _idle_line(self, conn: Conn, line: bytes, _now: float) -> None:
        self.dialect.answer_ping(conn, line)

    # -- commands -------------------------------------------------------------------

    def login(
        self,
        users: Sequence[str],
        connect_only: bool = False,
        sources: list[str] | None = None,
        wave: int = 200,
    ) -> dict[str, Any]:
        """Open a connection per user and log each in (or only finish TLS)."""
        start = time.monotonic()
        timeout = login_timeout(len(users))
        deadline = start + timeout
        conns: list[Conn] = []
        for first in range(0, len(users), wave):
            names = users[first : first + wave]
            self.swarm.on_connected = lambda c: None
            batch = self.swarm.open(
                self.host, self.port, len(names), sources=sources, wave=wave, timeout=timeout
            )
            for conn, name in zip(batch, names, strict=True):
                conn.user = name
                conn.on_line = self._idle_line if connect_only else self._login_line
                if not connect_only:
                    self.dialect.greet(conn)
            conns.extend(batch)
            if not connect_only and not self.swarm.run_until(partial(_logged_in, batch), deadline):
                raise TimeoutError("logins did not finish in time")
        self.swarm.run_until(lambda: False, time.monotonic() + 0.3)  # drain history frames
        lost = sum(c.closed for c in conns)
        if lost:
            raise ConnectionError(f"{lost} connections closed during login")
        for conn in conns:
            conn.on_line = self._idle_line
        return {"connections": len(conns), "seconds": time.monotonic() - start}

    def _login_line(self, conn: Conn, line: bytes, _now: float) -> None:
        if not conn.ready:
            self.dialect.login_line(conn, line)
        else:
            self.dialect.answer_ping(conn, line)

    def receive(self, limit_s: float, only: list[str] | None = None) -> dict[str, Any]:
        """Record message arrivals until the parent says stop; per seq: first and last.

        ``only``: the users whose connections are the room's receivers (default: all).
        One sender's messages reach each receiver in order, so a block of lines is
        counted in C (``count`` of the mark) and only its last sequence number is parsed:
        a receiver's messages are then exactly those up to its highest, which the count
        checks (``disorder`` counts blocks where it did not hold). After each poll, the
        sequence numbers that some receiver now has for the first time got their first
        arrival, and those that every receiver now has their last.
        """
        first: dict[int, float] = {}
        last: dict[int, float] = {}
        chosen = set(only) if only is not None else None
        receivers = [
            c for c in self.swarm.conns if not c.closed and (chosen is None or c.user in chosen)
        ]
        deliveries = disorder = 0
        pinged, answer_ping = self.dialect.pinged, self.dialect.answer_ping

        def on_block(conn: Conn, block: bytes, _now: float) -> None:
            nonlocal deliveries, disorder
            if pinged(block):
                for line in block.split(b"\n"):
                    answer_ping(conn, line)
            k = block.count(MARK)
            if not k:
                return
            top = seq_of(block[block.rfind(MARK) :])
            if top - conn.seen != k:
                disorder += 1
            conn.seen = top
            deliveries += k

        for conn in receivers:
            conn.seen = 0
            conn.on_block = on_block
        self.pipe.send({"receiving": len(receivers)})
        mark = ahead = 0  # every receiver has up to mark; some receiver up to ahead
        deadline = time.monotonic() + limit_s
        while not self.pipe.poll(0) and time.monotonic() < deadline:
            now = self.swarm.poll(0.02)
            if now is None or not receivers:
                continue
            seen = [c.seen for c in receivers]
            top, low = max(seen), min(seen)
            for seq in range(ahead + 1, top + 1):
                first[seq] = now
            for seq in range(mark + 1, low + 1):
                last[seq] = now
            ahead, mark = max(ahead, top), max(mark, low)
            if self.slot >= 0:
                self.marks[self.slot] = mark
        if self.pipe.poll(0):
            self.pipe.recv()  # the stop
        for conn in receivers:
            conn.on_block = by_line
        return {
            "receivers": len(receivers),
            "lost": sum(c.closed for c in receivers),
            "first": first,
            "last": last,
            "deliveries": deliveries,
            "disorder": disorder,
        }

    def _sender(self) -> Conn:
        conn = next(c for c in self.swarm.conns if not c.closed)
        conn.on_line = self._idle_line
        return conn

    def fanout_send(
        self,
        *,
        room: str,
        seconds: float,
        window: int,
        chars: int,
        slots: int,
        drain_s: float = 30.0,
    ) -> dict[str, Any]:
        """Closed loop: at most ``window`` messages not yet delivered to every receiver."""
        conn = self._sender()
        say = self.dialect.say
        sent = 0
        for i in range(slots):
            self.marks[i] = 0
        start = time.monotonic()
        stop_at = start + seconds
        times: dict[int, float] = {}
        while time.monotonic() < stop_at and not conn.closed:
            done = min(self.marks[i] for i in range(slots))
            free = window - (sent - done)
            if free > 0:  # the whole refill in one TLS write, as a pipelining client
                now = time.monotonic()
                lines = []
                for seq in range(sent + 1, sent + free + 1):
                    times[seq] = now
                    lines.append(say(room, body(seq, chars), seq))
                sent += free
                self.swarm.send(conn, b"".join(lines))
            self.swarm.poll(0.0005)
        drained = self.swarm.run_until(
            lambda: min(self.marks[i] for i in range(slots)) >= sent,
            time.monotonic() + drain_s,
            tick=0.001,
        )
        end = time.monotonic()
        return {"sent": sent, "start": start, "end": end, "drained": drained, "times": times}

    def oper(self, operator: str, password: str, timeout: float = 10.0) -> dict[str, Any]:
        """Make the sender an IRC operator with user mode ``+F`` (ngircd's relaxed flood
        protection); raise unless the server says both were granted: 381, then a
        ``MODE`` of the sender's nick that sets ``F``."""
        conn = self._sender()
        nick = conn.user.encode()
        heard: list[list[bytes]] = []  # the words of each line since OPER

        def on_line(c: Conn, line: bytes, _now: float) -> None:
            heard.append(line.rstrip(b"\r").split(b" "))
            self.dialect.answer_ping(c, line)

        def numeric(*codes: bytes) -> list[bytes] | None:
            return next((w for w in heard if len(w) > 1 and w[1] in codes), None)

        def f_set() -> list[bytes] | None:
            return next(
                (w for w in heard if w[1:3] == [b"MODE", nick] and b"F" in b"".join(w[3:4])),
                None,
            )

        conn.on_line = on_line
        try:
            self.swarm.send(conn, f"OPER {operator} {password}\r\n".encode())
            self.swarm.run_until(lambda: numeric(b"381", b"464", b"491") is not None, _in(timeout))
            if numeric(b"381") is None:
                raise RuntimeError(f"OPER not granted: {numeric(b'464', b'491')!r}")
            self.swarm.send(conn, f"MODE {conn.user} +F\r\n".encode())
            refusals = (b"481", b"501", b"502")
            self.swarm.run_until(
                lambda: f_set() is not None or numeric(*refusals) is not None, _in(timeout)
            )
            mode = f_set()
            if mode is None:
                raise RuntimeError(f"user mode +F not granted: {numeric(*refusals)!r}")
        finally:
            conn.on_line = self._idle_line
        return {"mode": b" ".join(mode).decode()}

    def rate_send(self, room: str, rate: float, seconds: float, chars: int) -> dict[str, Any]:
        """Open loop: one message every 1/rate s, whatever the receivers do."""
        conn = self._sender()
        say = self.dialect.say
        times: dict[int, float] = {}
        start = time.monotonic()
        total = int(rate * seconds)
        for seq in range(1, total + 1):
            due = start + (seq - 1) / rate
            self.swarm.run_until(partial(_past, due), due + 1, tick=0.001)
            times[seq] = time.monotonic()
            self.swarm.send(conn, say(room, body(seq, chars), seq))
        return {"sent": total, "times": times, "start": start, "end": time.monotonic()}

    def chat(self, room: str, rate: float, seconds: float, chars: int) -> dict[str, Any]:
        """Every connection sends at ``rate``/s into ``room``; latencies to the others."""
        conns = [c for c in self.swarm.conns if not c.closed]
        sent_at: dict[int, float] = {}
        samples: list[tuple[float, float]] = []  # (send time, latency)
        is_message = self.dialect.is_message

        def on_line(conn: Conn, line: bytes, now: float) -> None:
            if not is_message(line):
                self.dialect.answer_ping(conn, line)
                return
            seq = seq_of(line)
            if seq >= 0 and seq // 1_000_000 != conn.index:
                t = sent_at.get(seq)
                if t is not None:
                    samples.append((t, now - t))

        for conn in conns:
            conn.on_line = on_line
        start = time.monotonic()
        k = 0
        while time.monotonic() - start < seconds:
            due = start + k / rate
            self.swarm.run_until(partial(_past, due), due + 1, tick=0.002)
            k += 1
            for conn in conns:
                seq = conn.index * 1_000_000 + k
                sent_at[seq] = time.monotonic()
                self.swarm.send(conn, self.dialect.say(room, body(seq, 64), seq))
        self.swarm.run_until(lambda: False, time.monotonic() + 1.0)
        for conn in conns:
            conn.on_line = self._idle_line
        expected = k * len(conns) * (len(conns) - 1)
        return {"samples": samples, "expected": expected, "start": start}

    def storm(self) -> dict[str, Any]:
        """Every connection (TLS up, not logged in) sends its login at once."""
        conns = [c for c in self.swarm.conns if not c.closed]
        welcomed: list[float] = []

        def on_line(conn: Conn, line: bytes, now: float) -> None:
            if not conn.ready and self.dialect.login_line(conn, line):
                welcomed.append(now)

        for conn in conns:
            conn.on_line = on_line
        start = time.monotonic()
        for conn in conns:
            self.dialect.greet(conn)
        self.swarm.run_until(lambda: len(welcomed) == len(conns), start + login_timeout(len(conns)))
        return {"start": start, "welcomed": welcomed, "connections": len(conns)}

    def ingest(self, seconds: float, window: int, chars: int) -> dict[str, Any]:
        """Each connection sends into its own room, keeping ``window`` sends unacknowledged."""
        conns = [c for c in self.swarm.conns if not c.closed]
        outstanding = dict.fromkeys(range(len(conns)), 0)
        acks = 0
        say = self.dialect.say
        is_ack = self.dialect.is_ack

        def on_line(conn: Conn, line: bytes, _now: float) -> None:
            nonlocal acks
            if is_ack(line):
                acks += 1
                outstanding[conn.index] -= 1

        for conn in conns:
            conn.on_line = on_line
        text = body(0, chars)
        start = time.monotonic()
        stop_at = start + seconds
        seq = 0
        while time.monotonic() < stop_at:
            for conn in conns:
                # Pipelined like a busy client: the whole refill in one TLS write.
                free = window - outstanding[conn.index]
                if free > 0:
                    outstanding[conn.index] = window
                    self.swarm.send(
                        conn, b"".join(say(conn.user, text, seq + k) for k in range(1, free + 1))
                    )
                    seq += free
            self.swarm.poll(0.001)
        counted = acks
        elapsed = time.monotonic() - start
        self.swarm.run_until(
            lambda: all(v == 0 for v in outstanding.values()), time.monotonic() + 30
        )
        for conn in conns:
            conn.on_line = self._idle_line
        return {"acks": counted, "seconds": elapsed, "lost": sum(c.closed for c in conns)}

    def history(self, user: str, rooms: int) -> dict[str, Any]:
        """One login; times of the welcome and of the last on-login ``history`` frame."""
        conn = self.swarm.open(self.host, self.port, 1)[0]
        conn.user = user
        marks: dict[str, float] = {}
        seen = 0

        def on_line(c: Conn, line: bytes, now: float) -> None:
            nonlocal seen
            if line.startswith(b'{"type":"welcome"'):
                marks["welcome"] = now
            elif line.startswith(b'{"type":"history"'):
                seen += 1
                if seen == rooms:
                    marks["history"] = now
            elif line.startswith(b'{"type":"error"'):
                raise RuntimeError(line[:200].decode())

        conn.on_line = on_line
        start = time.monotonic()
        self.swarm.send(conn, ChatDialect.login(conn))
        self.swarm.run_until(lambda: "history" in marks, start + 60, tick=0.0005)
        self.swarm.close(conn)
        if "history" not in marks:
            raise TimeoutError("history frames did not all arrive")
        return {"start": start, **marks}


def main(pipe: Pipe, spec: dict[str, Any], marks: Any) -> None:
    """Entry point of a generator process."""
    raise_fd_limit()
    Agent(pipe, spec, marks).serve()
