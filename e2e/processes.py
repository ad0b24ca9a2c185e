"""Servers the harness starts (etcd, kube-apiserver, moto, ...): on 127.0.0.1, logs under build/e2e, never left behind.

Every process runs in its own process group, so stopping it also stops whatever it started. `Processes` is a
context manager: leaving it (normally, on an exception or on SIGTERM/SIGINT) stops everything it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(what: str, ready: Callable[[], bool], timeout: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: exited with {process.returncode}{tail(log)}")
        try:
            if ready():
                return
        except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f} s{tail(log)}")


def tail(log: Path | None, lines: int = 20) -> str:
    if log is None or not log.exists():
        return ""
    return f"; last lines of {log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def group_running(pgid: int) -> list[int]:
    """The processes of a process group that still run (zombies waiting for a reaper count as gone)."""
    running = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            running.append(int(entry.name))
    return running


class Processes:
    def __init__(self, logs: Path):
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[subprocess.Popen, Path]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            )  # fmt: skip
        self.running.append((name, process))
        return process, log

    def stop(self, process: subprocess.Popen) -> None:
        """Stops one process before the others (e.g. a controller that must not act on the next stack)."""
        self._stop(process)
        self.running = [(name, p) for name, p in self.running if p is not process]

    def stop_all(self) -> None:
        # Reverse start order: kwok and the controllers before the API server, the API server before etcd.
        for _, process in reversed(self.running):
            self._stop(process)
        self.running.clear()

    @staticmethod
    def _stop(process: subprocess.Popen, grace: float = 10) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        # Children that outlived their parent in the same group; a signal is delivered when the process next runs,
        # so wait (bounded) until none of them runs any more: on a loaded machine that takes a moment.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + grace
        while group_running(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> "Processes":
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def _on_signal(self, signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def __exit__(self, *exc) -> None:
        self.stop_all()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
