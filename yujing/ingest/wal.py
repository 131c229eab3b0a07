"""The in-process bus's write-ahead log on local disk: numbered segment files of framed
entries (a record, a group's commit, or the head a segment starts with), written and
fsynced in groups by one writer task, read back in order at start.

A frame is `length u32 | crc32 u32 | msgpack body`. A crash can leave a torn frame at the
end of the last segment; replay stops there and cuts it off: its `publish` never returned,
so nobody was told it was taken.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger(__name__)

FRAME = struct.Struct("<II")
SUFFIX = ".wal"
# Body kinds: a record [1, topic, offset, key, value]; a commit [2, group, topic, offset];
# a head [3, {group: {topic: offset}}, {topic: next offset}], first in every segment, so
# that older segments can go without losing a position or an offset.
RECORD, COMMIT, HEAD = 1, 2, 3

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


def frame(body: list[Any]) -> bytes:
    data = _encode(body)
    return FRAME.pack(len(data), zlib.crc32(data)) + data


@dataclass
class Segment:
    number: int
    path: Path
    # Per topic, the highest offset written here: the segment may go once every topic
    # has trimmed past it.
    top: dict[str, int] = field(default_factory=dict)


class Wal:
    """Segment files in one directory. `fsync=False` only for measuring what fsync costs."""

    def __init__(self, directory: Path, *, segment_bytes: int = 64 << 20, fsync: bool = True):
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.segments: list[Segment] = []
        self._fd = -1
        self._size = 0

    def replay(self) -> Iterator[tuple[Segment, list[Any]]]:
        """Every entry of every segment, in order; opens the last segment for appending."""
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = sorted(self.directory.glob(f"*{SUFFIX}"))
        for path in paths:
            seg = Segment(int(path.stem), path)
            self.segments.append(seg)
            yield from ((seg, body) for body in self._read(path))
        if self.segments:
            last = self.segments[-1].path
            self._fd = os.open(last, os.O_WRONLY | os.O_APPEND)
            self._size = last.stat().st_size

    @staticmethod
    def _read(path: Path) -> Iterator[list[Any]]:
        data = path.read_bytes()
        at = 0
        while at + FRAME.size <= len(data):
            length, crc = FRAME.unpack_from(data, at)
            body = data[at + FRAME.size : at + FRAME.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break
            yield _decode(body)
            at += FRAME.size + length
        if at < len(data):
            log.warning("bus log: %s ends in a torn entry (%d bytes), cut off",
                        path.name, len(data) - at)  # fmt: skip
            with open(path, "r+b") as f:
                f.truncate(at)

    def landing(self) -> tuple[int, bool]:
        """The segment the next write goes to, and whether it starts a new one."""
        if self._fd < 0 or self._size >= self.segment_bytes:
            return (self.segments[-1].number + 1 if self.segments else 0), True
        return self.segments[-1].number, False

    def write(self, data: bytes, head: bytes | None) -> None:
        """Appends (after starting a new segment with `head` when one is due) and syncs.
        Runs in a worker thread."""
        if head is not None:
            number, _ = self.landing()
            path = self.directory / f"{number:012d}{SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if self._fd >= 0:
                os.close(self._fd)
            self._fd, self._size = fd, 0
            self.segments.append(Segment(number, path))
            data = head + data
        os.write(self._fd, data)
        self._size += len(data)
        if self.fsync:
            os.fdatasync(self._fd)
            if head is not None:  # the new file's name must survive a crash too
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)

    def drop_oldest(self) -> None:
        seg = self.segments.pop(0)
        seg.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class _Unit:
    data: bytes
    done: Callable[[int], None]  # told the segment number once the bytes are on disk
    future: asyncio.Future[None]


class Writer:
    """Group commit: what is handed in while a write and fsync run goes in the next one.

    One task writes, so a cancelled publisher cannot leave the log half told; each unit's
    `done` runs in write order on the event loop once its bytes are synced.
    """

    def __init__(self, wal: Wal, head: Callable[[], bytes]) -> None:
        self.wal = wal
        self._head = head
        self._queue: list[_Unit] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._closing = False
        self.writes = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bus-log-writer")

    def submit(self, data: bytes, done: Callable[[int], None]) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        if self._failed is not None or self._task is None or self._closing:
            why = self._failed or "it is closed"
            future.set_exception(OSError(f"the bus log cannot be written: {why}"))
            return future
        self._queue.append(_Unit(data, done, future))
        self._wake.set()
        return future

    async def _run(self) -> None:
        while not (self._closing and not self._queue):
            await self._wake.wait()
            self._wake.clear()
            units, self._queue = self._queue, []
            if not units:
                continue
            number, new = self.wal.landing()
            head = self._head() if new else None
            try:
                await asyncio.to_thread(self.wal.write, b"".join(u.data for u in units), head)
            except OSError as exc:
                # A disk that refuses a write cannot be trusted with the next one either.
                log.error("bus log write failed: %s", exc)
                self._failed = exc
                for u in units:
                    if not u.future.done():
                        u.future.set_exception(exc)
                continue
            self.writes += 1
            for u in units:
                u.done(number)
                if not u.future.done():
                    u.future.set_result(None)

    async def close(self) -> None:
        """Writes what was handed in, then stops."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            await self._task
            self._task = None
        self.wal.close()
