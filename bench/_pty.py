"""Run a terminal program in a pseudo-terminal, as a user's terminal would: drain its output, time it.

The dashboard writes escape sequences to its terminal; someone must read them or it blocks, so a thread
reads the master side continuously and keeps counts (bytes, when output first came, when it last came).
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import termios
import threading
import time


class PtyProcess:
    def __init__(self, argv: list[str], env: dict[str, str], cols: int = 160, rows: int = 48,
                 cwd: str | None = None, keep: int = 1 << 16):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**env, "TERM": env.get("TERM", "xterm-256color"), "COLUMNS": str(cols), "LINES": str(rows)}
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.bytes = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.tail = b""
        self._keep = keep
        self._marks: list[tuple[bytes, float]] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            now = time.perf_counter()
            if self.t_first is None:
                self.t_first = now
            self.t_last = now
            self.bytes += len(data)
            self.tail = (self.tail + data)[-self._keep :]
            for i, (needle, t) in enumerate(self._marks):
                if t == 0.0 and needle in self.tail:
                    self._marks[i] = (needle, now)

    def watch_for(self, needle: bytes) -> None:
        """Record when ``needle`` first shows up in the output (see ``seen``)."""
        self._marks.append((needle, 0.0))

    def seen(self, needle: bytes) -> float | None:
        for n, t in self._marks:
            if n == needle and t:
                return t
        return None

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self, keys: bytes = b"\x11", timeout: float = 10.0) -> int | None:
        """Quit with ``keys`` (ctrl+q), then SIGTERM, then SIGKILL its process group."""
        if self.proc.poll() is None:
            try:
                self.send(keys)
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(self.proc.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        self.proc.wait(5)
                        break
                    except subprocess.TimeoutExpired:
                        continue
        try:
            os.close(self.master)
        except OSError:
            pass
        return self.proc.returncode
