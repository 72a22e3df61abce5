"""Messages shared between the app, its screens and its workers.

Screens never open each other: they post a ``...Requested`` message, and the app's navigation
(tui.navigation.Navigator) builds the screen with its services and pushes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:  # kept out of the import path to the first frame (numpy, the follower)
    from core.config import RunConfig
    from core.devices import DeviceReport, ProcStat
    from tui.follower import FollowUpdate


class RunUpdated(Message):
    """New events (and log lines, alerts, status) of a followed run.

    Coalescing in the toolong way, but lossless: when the UI falls behind, a pending update absorbs the
    one before it (``FollowUpdate.merged``), so a slow frame drops redraws, never data.
    """

    def __init__(self, update: FollowUpdate):
        super().__init__()
        self.update = update

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, RunUpdated) and message.update.run_id == self.update.run_id:
            message.update = self.update.merged(message.update)
            return True
        return False


@dataclass
class DeviceSample:
    report: DeviceReport
    seq: int = 0  # increasing per reading: a screen that got it twice (history + message) counts it once
    # run id -> (label, stat) for each live process of a watched run: 'rank 0', 'launcher', ...
    procs: dict[str, list[tuple[str, ProcStat]]] = field(default_factory=dict)


class DevicesSampled(Message, bubble=False):
    """A device reading (~1 Hz). Posted to the app, which hands a copy to every screen (so no bubbling)."""

    def __init__(self, sample: DeviceSample):
        super().__init__()
        self.sample = sample


class RunLaunched(Message):
    """A run was started from the configure screen."""

    def __init__(self, run: dict[str, Any]):
        super().__init__()
        self.run = run


class RunDeleted(Message):
    """A run was removed from the store (and its folder, when ``files_removed``)."""

    def __init__(self, run_id: str, files_removed: bool):
        super().__init__()
        self.run_id = run_id
        self.files_removed = files_removed


class RunTagged(Message):
    """A run's tags or note were saved (from the tag dialog)."""

    def __init__(self, run_id: str, tags: list[str], note: str | None):
        super().__init__()
        self.run_id = run_id
        self.tags = tags
        self.note = note


# ---------------------------------------------------------------------------- navigation requests
class CloneRequested(Message):
    """The user wants to launch a copy of a run: open the configure screen with ``config`` to edit."""

    def __init__(self, config: RunConfig, run_id: str):
        super().__init__()
        self.config = config
        self.run_id = run_id


class LiveRequested(Message):
    """Show this run's live screen (a run just resumed, or one to attach to)."""

    def __init__(self, run: dict[str, Any]):
        super().__init__()
        self.run = run


class ResultsRequested(Message):
    """Show the results pane (checkpoints and evaluations) of a run."""

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id


class RunPageRequested(Message):
    """Show a run's page."""

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id


class CompareRequested(Message):
    """Compare these runs side by side."""

    def __init__(self, run_ids: list[str]):
        super().__init__()
        self.run_ids = run_ids
