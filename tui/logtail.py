"""Tails of paddle's worker logs (runs/<id>/logs/workerlog.N). Pure, no Textual.

Rank 0's log is shown as it grows; for the other ranks only lines naming an error are kept, because
paddle's launcher names the wrong rank when one crashes and the cause is in that rank's log (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# PaddleNLP colours its log lines; a log panel wants the text.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]")
# Python's "...Error:" and tracebacks, PaddleNLP's "[ ERROR]" level, and glog's severity prefix
# ("E1202 12:00:00.123456 4242 file.cc:12] ...", F for fatal) that paddle's C++ side prints.
_ERROR = re.compile(r"Error|ERROR|Traceback|Exception|FATAL|^\s*[EF]\d{4} \d\d:\d\d:\d\d")
# On first sight of a long log, start this far from its end: the panel shows ~the last 100 lines.
START_TAIL_BYTES = 64 * 1024
MAX_READ_BYTES = 1 << 20


def clean_line(raw: str) -> str:
    # A progress bar redraws with \r: the last redraw is what a terminal would show.
    return _ANSI.sub("", raw.rsplit("\r", 1)[-1]).rstrip()


# PaddleNLP logs these at ERROR level on every rank of a healthy run (GPT-2's tokenizer has no BOS token):
# shown as errors they would cry wolf at the start of every run.
_BENIGN = ("Using bos_token, but it is not set yet",)


def is_error_line(line: str) -> bool:
    return bool(_ERROR.search(line)) and not any(b in line for b in _BENIGN)


class LogTail:
    """New complete lines of one growing text file, by byte offset."""

    def __init__(self, path: str | os.PathLike[str], start_tail_bytes: int = START_TAIL_BYTES):
        self.path = Path(path)
        self.offset: int | None = None
        self.start_tail_bytes = start_tail_bytes
        self._partial = b""

    def poll(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        skip_first = False
        if self.offset is None:
            self.offset = max(0, size - self.start_tail_bytes)
            skip_first = self.offset > 0  # we started mid-line
        elif size < self.offset:  # truncated or replaced: start over
            self.offset, self._partial = 0, b""
        if size == self.offset:
            return []
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(MAX_READ_BYTES)
        except OSError:
            return []
        self.offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return []
        self._partial = data[cut + 1:]
        lines = data[:cut].split(b"\n")
        if skip_first:
            lines = lines[1:]
        out = [clean_line(b.decode("utf-8", "replace")) for b in lines]
        return [ln for ln in out if ln]


class WorkerLogs:
    """Rank 0's new lines, and the error lines of every other rank (prefixed with the rank)."""

    def __init__(self, log_dir: str | os.PathLike[str]):
        self.log_dir = Path(log_dir)
        self._tails: dict[int, LogTail] = {}

    def _discover(self) -> None:
        try:
            names = os.listdir(self.log_dir)
        except OSError:
            return
        for name in names:
            stem, _, rank = name.rpartition(".")
            if stem == "workerlog" and rank.isdigit() and int(rank) not in self._tails:
                self._tails[int(rank)] = LogTail(self.log_dir / name)

    def poll(self) -> tuple[list[str], list[str]]:
        self._discover()
        rank0: list[str] = []
        errors: list[str] = []
        for rank in sorted(self._tails):
            lines = self._tails[rank].poll()
            if rank == 0:
                rank0 += lines
            else:
                errors += [f"rank {rank}: {ln}" for ln in lines if is_error_line(ln)]
        return rank0, errors
