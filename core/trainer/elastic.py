"""Restarts by paddle's elastic launcher (an etcd master, max_restart > 0): pure rules, no paddle."""

from __future__ import annotations

from pathlib import Path


def restarts_so_far(events_file: Path) -> int:
    """How many incarnations of this job started before: their ``start`` events in the run's file."""
    try:
        text = events_file.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return text.count('"type":"start"')


def restart_expected(status: str, max_restart: int, restart: int, stop_requested: bool, signalled: bool) -> bool:
    """Under an elastic launcher with restarts left, a failure (an exception: a peer died, say) or a
    SIGTERM nobody asked for (the launcher stopping the pod to restart it) is not the run's end."""
    if max_restart <= restart or stop_requested:
        return False
    return status == "failed" or (status == "stopped" and signalled)
