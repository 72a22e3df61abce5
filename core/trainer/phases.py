"""How long a worker took to get going, phase by phase, for its log (bench/train_startup.py reads it).

Times run from the process's own start (the kernel's record, so the interpreter's start-up counts too).
One line, printed once, wall/CPU seconds per phase (CPU: this process's, so a busy machine shows as wall
well above CPU): ``[gpt2-tui train] startup 2.41 s (CPU 2.30 s): python 0.05/0.04, paddle 1.21/1.18, ...``.
"""

from __future__ import annotations

import os
import time

PREFIX = "startup"


class Phases:
    def __init__(self) -> None:
        self.t0 = time.time() - process_age()
        self.last = self.t0
        self.last_cpu = 0.0  # process_time counts from the process's start
        self.marks: list[tuple[str, float, float]] = []

    def mark(self, name: str) -> None:
        """The phase ``name`` ends now."""
        now, cpu = time.time(), time.process_time()
        self.marks.append((name, now - self.last, cpu - self.last_cpu))
        self.last, self.last_cpu = now, cpu

    def line(self) -> str:
        parts = ", ".join(f"{name} {dt:.2f}/{c:.2f}" for name, dt, c in self.marks)
        return f"{PREFIX} {self.last - self.t0:.2f} s (CPU {self.last_cpu:.2f} s): {parts}"


def process_age() -> float:
    """Seconds since this process started (Linux: /proc, 10 ms ticks); 0 elsewhere.

    Not psutil's create_time: it adds the boot time, which /proc/stat gives in whole seconds."""
    try:
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        with open("/proc/self/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return 0.0


def parse(line: str) -> dict[str, float] | None:
    """The numbers of a ``line()`` found in a log line: {'total': s, 'cpu': s, phase: wall s,
    phase + '_cpu': CPU s, ...}."""
    at = line.find(f"] {PREFIX} ")
    if at < 0:
        return None
    try:
        head, _, tail = line[at + len(PREFIX) + 3 :].partition(": ")
        total, cpu = head.split(" s (CPU ")
        out = {"total": float(total), "cpu": float(cpu.rstrip(" s)"))}
        for part in tail.strip().split(", "):
            name, _, times = part.rpartition(" ")
            wall, _, c = times.partition("/")
            out[name], out[f"{name}_cpu"] = float(wall), float(c)
    except ValueError:
        return None
    return out
