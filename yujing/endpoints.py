"""Where a running `yujing up` listens, written to its data directory so that `yujing
simulate` (and people) find the ports it chose; and the lock that keeps a second `yujing up`
off a data directory in use."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from yujing.config import Settings

FILE = "endpoints.json"
LOCK = "yujing.lock"


@dataclass(frozen=True)
class Endpoints:
    api_url: str
    mqtt_url: str
    pid: int


class DataDirInUse(RuntimeError):
    pass


def write(data_dir: Path, api_url: str, mqtt_url: str) -> Path:
    path = data_dir / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(Endpoints(api_url, mqtt_url, os.getpid()))), "utf-8")
    tmp.replace(path)
    return path


def read(data_dir: Path) -> Endpoints | None:
    """The endpoints of a `yujing up` that is still running, else None."""
    try:
        raw = json.loads((data_dir / FILE).read_text("utf-8"))
        found = Endpoints(str(raw["api_url"]), str(raw["mqtt_url"]), int(raw["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if _alive(found.pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def defaults(settings: Settings) -> Endpoints:
    """What the settings name, for when no `yujing up` wrote its endpoints."""
    mqtt = settings.mqtt_url or f"mqtt://127.0.0.1:{settings.mqtt_port}"
    return Endpoints(f"http://{settings.http_host}:{settings.http_port}", mqtt, 0)


@contextlib.contextmanager
def hold(data_dir: Path) -> Iterator[None]:
    """Hold the data directory for this process; DataDirInUse names the holder. The lock
    is the kernel's (flock): it goes with the process, however the process ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK
    handle: IO[str] = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise DataDirInUse(
                f"the data directory {data_dir} is in use by yujing (pid {holder}); stop it,"
                " or give this one another directory with YJ_DATA_DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                (data_dir / FILE).unlink()
    finally:
        handle.close()
