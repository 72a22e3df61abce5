"""DevicePanel lists every process on each GPU: the run's ranks by name, anyone else's in yellow."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from core.devices import GpuProcess, ProcStat
from tui.testing import fake_report
from tui.widgets.device_panel import DevicePanel

GIB = 1024**3


@pytest.fixture
def anyio_backend():
    return "asyncio"


class PanelApp(App):
    def compose(self) -> ComposeResult:
        yield DevicePanel(id="panel")


@pytest.mark.anyio
async def test_gpu_cards_list_every_process_and_hide_the_list_when_there_is_none():
    app = PanelApp()
    async with app.run_test(size=(100, 40)) as pilot:
        panel = app.query_one(DevicePanel)
        panel.set_devices("gpu:0,1")
        report = fake_report(1, gpus=2)
        report.gpus[0].processes = [GpuProcess(4242, "alice", "python", 30 * GIB, "compute"),
                                    GpuProcess(9001, "me", "python", 2 * GIB, "compute")]
        panel.push(report, [("rank 0", ProcStat(9001, 95.0, GIB))])
        await pilot.pause()
        card0, card1 = panel.cards[0], panel.cards[1]
        text = str(card0.procs.render())
        assert card0.procs.display and "4242" in text and "alice" in text and "30.0 GiB" in text
        assert "9001" in text and "rank 0" in text  # the run's own process, by its rank
        assert not card1.procs.display  # no process reported: no line, the card looks as before
        report = fake_report(2, gpus=2)  # the other job ended
        panel.push(report, [])
        await pilot.pause()
        assert not card0.procs.display


def test_the_picker_says_when_paddle_cannot_use_the_gpus():
    from core.paddle_build import PaddleBuild
    from tui.widgets.device_picker import cpu_summary

    report = fake_report(1, gpus=2)
    assert "cannot use" not in cpu_summary(report).plain  # paddle not looked at: nothing to say
    report.paddle, report.driver_cuda = PaddleBuild(("paddlepaddle",), "3.3.1", None), "12.8"
    assert "paddle cannot use these GPUs" in cpu_summary(report).plain
    assert "paddlepaddle-gpu==3.3.1" in cpu_summary(report).plain
