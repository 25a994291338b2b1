"""A file's pieces fit the frame limit, base64, ids, offset and req included."""

from __future__ import annotations

import pytest

from chatsecure.protocol import FileChunk, FileData
from chatsecure.protocol.codec import MAX_FILE_SIZE, MAX_REQ_CHARS, MAX_TOKEN_CHARS, encode
from chatsecure.server.core.files import chunk_bytes


def test_the_default_frame_limit_gives_47_kib_pieces() -> None:
    assert chunk_bytes(65536) == 48128


@pytest.mark.parametrize("max_frame_bytes", [1024, 1500, 4096, 65536, 16 * 1024 * 1024])
def test_the_largest_pieces_fit_in_a_frame(max_frame_bytes: int) -> None:
    piece = chunk_bytes(max_frame_bytes)
    assert piece > 0
    data = b"\xff" * piece
    req = "r" * MAX_REQ_CHARS
    token = "t" * MAX_TOKEN_CHARS
    frames: list[FileChunk | FileData] = [
        FileChunk(upload=token, offset=MAX_FILE_SIZE, data=data, req=req),
        FileData(file=token, offset=MAX_FILE_SIZE, data=data, last=False, req=req),
    ]
    for frame in frames:
        assert len(encode(frame)) <= max_frame_bytes
