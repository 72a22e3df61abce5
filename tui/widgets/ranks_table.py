"""RanksTable: each rank's last step and how long ago it was heard from; a silent rank is flagged."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.format import fmt_age, fmt_bytes
from tui.runstate import RankInfo

# The trainer's heartbeat comes every 5 s and a ranks record at every flush (~1 s): 30 s of silence is
# six missed heartbeats.
SILENT_S = 30.0


def silent_ranks(ranks: dict[int, RankInfo], now: float, limit: float = SILENT_S) -> list[int]:
    return [r for r, info in sorted(ranks.items()) if info.heard_t is not None and now - info.heard_t > limit]


def render_ranks(ranks: dict[int, RankInfo], now: float, live: bool) -> Text:
    t = Text()
    if not ranks:
        t.append("no heartbeat yet" if live else "no rank reports", style="dim")
        return t
    t.append(f"{'rank':<5}{'device':<9}{'step':>8} {'heard':>7} {'mem':>10}  {'util':>5}\n", style="bold")
    silent = set(silent_ranks(ranks, now)) if live else set()
    for r, info in sorted(ranks.items()):
        age = now - info.heard_t if info.heard_t is not None else None
        util = f"{info.util:.0f}%" if info.util is not None else "-"
        line = (f"{r:<5}{(info.device or '-')[:8]:<9}{info.step if info.step is not None else '-':>8} "
                f"{fmt_age(age) if live else '-':>7} {fmt_bytes(info.mem_bytes):>10}  {util:>5}")
        t.append(line, style="bold red" if r in silent else "")
        if r in silent:
            t.append("  SILENT", style="bold red")
        t.append("\n")
    t.rstrip()
    return t


class RanksTable(Static, can_focus=True):
    ALLOW_MAXIMIZE = True

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__("", id=id, classes=classes)
        self.ranks: dict[int, RankInfo] = {}
        self.silent: list[int] = []

    def show(self, ranks: dict[int, RankInfo], now: float, live: bool = True) -> None:
        self.ranks = ranks
        self.silent = silent_ranks(ranks, now) if live else []
        self.update(render_ranks(ranks, now, live))
