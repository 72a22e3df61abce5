"""SVG snapshots of the screens people look at, at 80x24 and 160x48.

Deterministic: a fake clock, a fake sampler that stops after a fixed number of readings, canned
events, and every path or number that depends on the machine pinned (python, checkout, caches, free
disk). Review the report (``pytest --snapshot-report``) before ``--snapshot-update``.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from pathlib import Path

import pytest
from textual.widgets import Input

from core.presets import offline_preset
from core.store import Store
from tui.app import Gpt2App
from tui.screens.configure import ConfigureScreen
from tui.screens.live import LiveScreen
from tui.testing import T0, FakeClock, FakeLauncher, FakeSampler, canned_events
from tui.widgets.device_panel import DevicePanel

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
Usage = namedtuple("Usage", "total used free")
LIVE_SAMPLES = 30


@pytest.fixture(autouse=True)
def _pinned_machine(monkeypatch):
    """Paths and numbers that differ between machines, fixed."""
    monkeypatch.setenv("PPNLP_HOME", "/opt/paddlenlp")  # nothing cached there: downloads are announced
    monkeypatch.setattr("tui.command.PYTHON", "/usr/bin/python3")
    monkeypatch.setattr("core.launch.TRAIN_SCRIPT", Path("/opt/gpt2-tui/core/train.py"))
    monkeypatch.setattr("core.disk_plan.shutil.disk_usage", lambda p: Usage(2 * 10**12, 10**12, 10**12))


async def _settle(pilot, cond, timeout=15.0):
    for _ in range(int(timeout / 0.05)):
        if cond():
            break
        await pilot.pause(0.05)
    else:
        raise AssertionError("the app did not settle")
    for inp in pilot.app.screen.query(Input):
        inp.cursor_blink = False  # a blinking cursor would make two screenshots differ
    await pilot.pause(0.4)  # charts redraw on a 0.25 s timer


def configure_app(tmp_path) -> Gpt2App:
    app = Gpt2App(store_path=tmp_path / "runs.db", launcher=FakeLauncher(), sampler=FakeSampler(gpus=2, samples=1),
                  clock=FakeClock(), poll_interval=0.02, sample_interval=0.02)
    app.services.runs_root = Path("/srv/gpt2-tui/runs")
    return app


async def configure_ready(pilot):
    def ready():
        s = pilot.app.screen
        if not isinstance(s, ConfigureScreen) or s.preset is None:
            return False
        pre = s.query_one("#preflight")
        return pre.checks is not None and not pre.running and s.query_one("#command").command is not None

    await _settle(pilot, ready)


def live_app(tmp_path) -> tuple[Gpt2App, FakeLauncher]:
    fake = FakeLauncher(events=canned_events(1, 40))
    store = Store(tmp_path / "runs.db")
    fake.launch(store, offline_preset().replace(run_name="snapshot-run"))
    store.close()
    # The readings wait for the live screen (see live_ready): then all 30 carry the run's processes.
    sampler = FakeSampler(gpus=2, samples=LIVE_SAMPLES, gate=threading.Event())
    app = Gpt2App(store_path=tmp_path / "runs.db", launcher=fake, sampler=sampler,
                  clock=FakeClock(T0 + 25), attach=fake.run_id, poll_interval=0.02, sample_interval=0.01)
    return app, fake


async def live_ready(pilot):
    await _settle(pilot, lambda: isinstance(pilot.app.screen, LiveScreen))
    sampler = pilot.app.services.sampler_factory()  # the FakeSampler given to the app (the factory returns it)
    sampler.gate.set()

    def ready():
        s = pilot.app.screen
        return (isinstance(s, LiveScreen) and s.state.step == 40 and sampler.calls == LIVE_SAMPLES
                and s.query_one(DevicePanel).samples == LIVE_SAMPLES and len(s.query_one("#rank0-log").lines) == 3
                and "rank 0" in str(s.query_one("#proc-table").render()))

    await _settle(pilot, ready)


@pytest.mark.parametrize("size", SIZES)
def test_configure_screen(snap_compare, tmp_path, size):
    """Configure on a machine with two GPUs: the reference preset and why, the form with each field's
    help, the device picker, the exact command and the preflight checklist (downloads announced)."""
    assert snap_compare(configure_app(tmp_path), terminal_size=size, run_before=configure_ready)


@pytest.mark.parametrize("size", SIZES)
def test_configure_invalid_field(snap_compare, tmp_path, size):
    """A wrong learning rate: its field is marked with the reason, and the command is withheld."""

    async def run_before(pilot):
        await configure_ready(pilot)
        pilot.app.screen.form.control("learning_rate").focus()
        await pilot.press("end", "ctrl+u", "-", "1")  # clear the field, type -1
        await _settle(pilot, lambda: "learning_rate" in pilot.app.screen.problems)

    assert snap_compare(configure_app(tmp_path), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_live_screen_mid_run(snap_compare, tmp_path, size):
    """A run at step 40 of 120: progress with ETA, loss/EMA with eval points, learning rate,
    throughput, GPUs, ranks, rank 0's log and no alerts."""
    app, _ = live_app(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=live_ready)


@pytest.mark.parametrize("size", SIZES)
def test_device_panel_with_gpus(snap_compare, tmp_path, size):
    """The device panel zoomed (tab to it, m): two GPUs from fake NVML readings with utilisation and
    memory sparklines over 30 readings, temperature, power, and the run's processes."""

    async def run_before(pilot):
        await live_ready(pilot)
        pilot.app.screen.query_one(DevicePanel).focus()
        await pilot.press("m")  # zoom the focused panel
        await _settle(pilot, lambda: pilot.app.screen.maximized is not None)

    app, _ = live_app(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, tmp_path, size):
    """F1 (or ? outside a text field) on the configure screen: its keys and the app's."""

    async def run_before(pilot):
        await configure_ready(pilot)
        await pilot.press("f1")
        await _settle(pilot, lambda: type(pilot.app.screen).__name__ == "HelpScreen")

    assert snap_compare(configure_app(tmp_path), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_stop_confirmation(snap_compare, tmp_path, size):
    """s on the live screen asks before stopping, and says what a stop does."""

    async def run_before(pilot):
        await live_ready(pilot)
        await pilot.press("s")
        await _settle(pilot, lambda: type(pilot.app.screen).__name__ == "ConfirmScreen")

    app, _ = live_app(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=run_before)
