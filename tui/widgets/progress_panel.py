"""ProgressPanel: status, step / total with a bar, epoch, elapsed, ETA and the latest numbers."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.format import fmt_age, fmt_duration, fmt_float, fmt_rate, update_text
from tui.runstate import RunState

STATUS_STYLE = {"running": "bold green", "finished": "bold cyan", "stopped": "bold yellow", "failed": "bold red",
                "lost": "bold red", "stopping": "bold yellow", "starting": "bold"}


def bar(fraction: float, width: int) -> str:
    eighths = int(round(max(0.0, min(1.0, fraction)) * width * 8))
    full, part = divmod(eighths, 8)
    return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width)


def render_progress(state: RunState, status: str, now: float, width: int = 80, reason: str | None = None) -> Text:
    t = Text(no_wrap=False)
    t.append(f" {status.upper()} ", style=f"reverse {STATUS_STYLE.get(status, 'bold')}")
    total = state.total_steps
    t.append(f"  step {state.step:,}" + (f" / {total:,}" if total else ""), style="bold")
    if total:
        t.append("  ▕")
        t.append(bar(state.fraction, max(8, min(40, width // 5))), style="cyan")
        t.append(f"▏ {100 * state.fraction:3.0f}%")
    epochs = f" / {state.num_epochs:.3g}" if state.num_epochs else ""  # max_steps gives fractions: 21.3
    t.append(f"  epoch {state.epoch:.2f}{epochs}")
    t.append(f"  elapsed {fmt_duration(state.elapsed(now))}")
    if status == "running":
        t.append(f"  ETA {fmt_duration(state.eta())}")
    t.append("\n")
    t.append("loss ", style="dim")
    t.append(fmt_float(state.loss), style="bold red" if state.loss is not None and state.loss != state.loss else "bold")
    t.append(f" (EMA {fmt_float(state.loss_ema)})  ")
    t.append("lr ", style="dim")
    t.append(f"{state.lr:.3g}  " if state.lr is not None else "-  ")
    t.append(f"{fmt_rate(state.samples_per_s)}", style="bold")
    t.append(" samples/s  ", style="dim")
    t.append(f"{fmt_rate(state.tokens_per_s)}", style="bold")
    t.append(" tokens/s", style="dim")
    if state.best_accuracy is not None:
        last = state.evals[-1]
        t.append("  best acc ", style="dim")
        t.append(f"{state.best_accuracy:.4f}", style="bold green")
        t.append(f" (last {fmt_float(last.accuracy)} at step {last.step})", style="dim")
    if state.checkpoints:
        t.append(f"  checkpoint @ {state.checkpoints[-1][0]}", style="dim")
    if state.last_step_t is not None and status == "running":
        t.append(f"  last step {fmt_age(now - state.last_step_t)} ago", style="dim")
    if reason:
        t.append("\n" + reason.splitlines()[0], style=STATUS_STYLE.get(status, ""))
    return t


class ProgressPanel(Static):
    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__("", id=id, classes=classes)
        self.state = RunState()
        self.status = "starting"
        self.reason: str | None = None

    def show(self, state: RunState, status: str, now: float, reason: str | None = None) -> None:
        self.state, self.status, self.reason = state, status, reason
        update_text(self, render_progress(state, status, now, self.size.width or 80, reason))
