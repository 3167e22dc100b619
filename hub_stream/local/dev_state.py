"""What a running `hub dev` leaves in its data directory for others to find.

- ``dev.lock``: held (flock) by the `hub dev` that owns the directory, with
  its pid in it. The kernel drops the lock when that process dies, however it
  dies, so a ``kill -9`` leaves no stale lock; a second `hub dev` on the same
  directory is refused before it touches anything.
- ``env``: the settings of the running stack as ``export HUB_…=…`` lines
  (shell-quoted), written when it is ready and removed when it stops. The
  staff CLI reads it when ``HUB_DATABASE_URL`` is not set, so `hub keys list`
  works beside `hub dev` in the same directory; ``. .hub/env`` does the same
  for any other tool.
"""

from __future__ import annotations

import fcntl
import os
import shlex
from pathlib import Path
from typing import IO

ENV_FILE = "env"
LOCK_FILE = "dev.lock"


class DataDirInUse(RuntimeError):
    """Another `hub dev` runs on this data directory."""


def claim(data_dir: Path) -> IO[str]:
    """Hold ``dev.lock`` for the life of the returned file; refuse if another process holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise DataDirInUse(
            f"another hub dev (pid {holder}) is running on {data_dir}: stop it first, or set HUB_DATA_DIR "
            "to another directory; nothing was changed"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def is_running(data_dir: Path) -> bool:
    """True while a `hub dev` holds ``dev.lock`` of ``data_dir``."""
    try:
        with (data_dir / LOCK_FILE).open("r") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def write_env(data_dir: Path, values: dict[str, str]) -> Path:
    path = data_dir / ENV_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the database password
    with os.fdopen(fd, "w") as f:
        f.write("# Written by a running `hub dev`; removed when it stops. Use: . .hub/env\n")
        f.writelines(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
    tmp.replace(path)
    return path


def remove_env(data_dir: Path) -> None:
    (data_dir / ENV_FILE).unlink(missing_ok=True)


def running_env(data_dir: Path) -> dict[str, str]:
    """The settings a running `hub dev` wrote in ``data_dir``; empty if none runs there."""
    path = data_dir / ENV_FILE
    if not path.exists() or not is_running(data_dir):
        return {}
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0] if value else ""
    return values
