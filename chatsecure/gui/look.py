"""How chat lines look: stable colours per name, and times in the reader's zone."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

# Dark enough to read on white, far enough apart to tell people apart.
NAME_COLOURS = (
    "#1f6fb2",
    "#b23a1f",
    "#2e8b3e",
    "#8a3ab9",
    "#b8860b",
    "#00838f",
    "#c2185b",
    "#5d4037",
    "#3f51b5",
    "#6b8e23",
    "#d2691e",
    "#455a64",
)


def name_colour(name: str) -> str:
    """The same colour for a name on every run and machine (not Python's salted hash)."""
    digest = hashlib.sha256(name.lower().encode("utf-8")).digest()
    return NAME_COLOURS[digest[0] % len(NAME_COLOURS)]


def local_time(ts: str, now: datetime | None = None) -> str:
    """``HH:MM`` for today, else ``YYYY-MM-DD HH:MM``, in local time."""
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return ts
    today = (now or datetime.now(UTC)).astimezone().date()
    return moment.strftime("%H:%M" if moment.date() == today else "%Y-%m-%d %H:%M")


# A padlock for private rooms, drawn here: emoji fonts are often missing, and a missing
# glyph shows as an empty box. "#" is a set pixel.
LOCK_PICTURE = (
    "....####....",
    "...#....#...",
    "..#......#..",
    "..#......#..",
    "..#......#..",
    ".##########.",
    ".##########.",
    ".####..####.",
    ".####..####.",
    ".#####.####.",
    ".##########.",
    ".##########.",
)


def xbm(picture: tuple[str, ...], name: str = "icon") -> str:
    """The X bitmap for rows of '#' and '.' (bits least significant first, as XBM has it)."""
    width = len(picture[0])
    data: list[str] = []
    for row in picture:
        padded = row.ljust((width + 7) // 8 * 8, ".")
        for start in range(0, len(padded), 8):
            byte = sum(1 << bit for bit, c in enumerate(padded[start : start + 8]) if c == "#")
            data.append(f"0x{byte:02x}")
    return (
        f"#define {name}_width {width}\n#define {name}_height {len(picture)}\n"
        f"static unsigned char {name}_bits[] = {{ {', '.join(data)} }};\n"
    )


THUMBNAIL_PIXELS = 200
# A small file may still unpack into a huge picture; such pictures get no thumbnail.
MAX_PICTURE_PIXELS = 4096 * 4096


def picture_size(head: bytes) -> tuple[int, int] | None:
    """Width and height from the first bytes of a PNG or GIF, or ``None`` for anything else."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    return None


def thumbnail_factor(width: int, height: int, limit: int = THUMBNAIL_PIXELS) -> int | None:
    """The ``subsample`` step that fits a picture in ``limit`` pixels; ``None`` if it should
    not be loaded at all (empty, or so large that decoding it would eat the memory)."""
    if width <= 0 or height <= 0 or width * height > MAX_PICTURE_PIXELS:
        return None
    return max(1, -(-max(width, height) // limit))
