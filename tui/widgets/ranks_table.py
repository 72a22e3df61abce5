"""RanksTable: each rank's last step and how long ago it was heard from; a silent rank is flagged."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.format import fmt_age, fmt_bytes, update_text
from tui.runstate import RankInfo

# The trainer's heartbeat comes every 5 s and a ranks record at every flush (~1 s): 30 s of silence is
# six missed heartbeats.
SILENT_S = 30.0


# A rank whose step time is this many times the median of all ranks holds every other rank back
# (DataParallel waits for the slowest at each all-reduce).
STRAGGLER_RATIO = 1.5


def silent_ranks(ranks: dict[int, RankInfo], now: float, limit: float = SILENT_S) -> list[int]:
    return [r for r, info in sorted(ranks.items()) if info.heard_t is not None and now - info.heard_t > limit]


def stragglers(ranks: dict[int, RankInfo], ratio: float = STRAGGLER_RATIO) -> list[int]:
    """Ranks whose step time is far above the median of the ranks that reported one (needs >= 2)."""
    times = sorted(i.step_time for i in ranks.values() if i.step_time)
    if len(times) < 2:
        return []
    mid = len(times) // 2
    median = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
    return [r for r, i in sorted(ranks.items()) if i.step_time and i.step_time > ratio * median]


def render_ranks(ranks: dict[int, RankInfo], now: float, live: bool) -> Text:
    t = Text()
    if not ranks:
        t.append("no heartbeat yet" if live else "no rank reports", style="dim")
        return t
    # 46 columns before the host: the live screen's side panel is ~48 wide at 160 columns.
    t.append(f"{'rank':<5}{'device':<7}{'step':>7} {'heard':>5} {'ms/st':>5} {'mem':>9} {'util':>4}\n", style="bold")
    silent = set(silent_ranks(ranks, now)) if live else set()
    slow = set(stragglers(ranks))
    for r, info in sorted(ranks.items()):
        age = now - info.heard_t if info.heard_t is not None else None
        util = f"{info.util:.0f}%" if info.util is not None else "-"
        ms = f"{info.step_time * 1000:.0f}" if info.step_time else "-"
        line = (f"{r:<5}{(info.device or '-')[:6]:<7}{info.step if info.step is not None else '-':>7} "
                f"{fmt_age(age) if live else '-':>5} {ms:>5} {fmt_bytes(info.mem_bytes):>9} {util:>4}")
        t.append(line, style="bold red" if r in silent else ("yellow" if r in slow else ""))
        if r in silent:
            t.append("  SILENT", style="bold red")
        elif r in slow:
            t.append("  STRAGGLER", style="bold yellow")
        if info.host:
            t.append(f"  {info.host}", style="dim")
        t.append("\n")
    t.rstrip()
    return t


class RanksTable(Static, can_focus=True):
    ALLOW_MAXIMIZE = True

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__("", id=id, classes=classes)
        self.ranks: dict[int, RankInfo] = {}
        self.silent: list[int] = []
        self.stragglers: list[int] = []

    def show(self, ranks: dict[int, RankInfo], now: float, live: bool = True) -> None:
        self.ranks = ranks
        self.silent = silent_ranks(ranks, now) if live else []
        self.stragglers = stragglers(ranks)
        update_text(self, render_ranks(ranks, now, live))
