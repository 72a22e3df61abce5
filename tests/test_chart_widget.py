"""ChartWidget in a Pilot app: braille lines, labels, legend, edge cases, tiny and large panels."""

from __future__ import annotations

import numpy as np
import pytest
from textual.app import App, ComposeResult

from tui.widgets.chart import BRAILLE_BASE, MARKER, ChartWidget, fmt_step, padded_range


class ChartApp(App):
    CSS = "ChartWidget { width: 1fr; height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield ChartWidget(refresh_interval=0.01)


@pytest.fixture
def anyio_backend():
    return "asyncio"  # Textual runs on asyncio; anyio's pytest plugin (no pytest-asyncio here) drives it


def braille_count(lines: list[str]) -> int:
    return sum(1 for line in lines for ch in line if BRAILLE_BASE < ord(ch) <= BRAILLE_BASE + 0xFF)


def setup_series(chart: ChartWidget) -> None:
    chart.add_series("loss", "cyan")
    chart.add_series("loss (smoothed)", "yellow")
    chart.add_series("eval accuracy", "green", kind="points", axis="right")


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(30, 6), (120, 40)])
async def test_lines_labels_and_legend(size):
    app = ChartApp()
    async with app.run_test(size=size) as pilot:
        chart = app.query_one(ChartWidget)
        setup_series(chart)
        xs = np.arange(0, 2000, dtype=float)
        chart.extend("loss", xs, 0.7 + 0.5 * np.exp(-xs / 400))
        chart.extend("loss (smoothed)", xs, 0.7 + 0.45 * np.exp(-xs / 400))
        chart.extend("eval accuracy", [500, 1000, 1999], [0.6, 0.8, 0.9])
        assert chart.dirty  # appending only marks dirty: the timer redraws
        await pilot.pause(0.05)
        assert not chart.dirty
        lines = chart.plain_lines()
        assert len(lines) == size[1] and all(len(line) == size[0] for line in lines)
        assert braille_count(lines) > 5
        assert MARKER in "".join(lines[1:-1])
        assert lines[0].startswith("━ loss")
        text = "\n".join(lines)
        assert "1.2" in text and "0.9" in text  # left max, right max
        assert lines[-1].rstrip().endswith("1999") and " 0 " in lines[-1] + " "
        # What the screen shows is what plain_lines says.
        assert app.screen._compositor.render_update(full=True) is not None
        assert chart.render_line(1).text == lines[1]


@pytest.mark.anyio
async def test_empty_single_constant_and_nonfinite():
    app = ChartApp()
    async with app.run_test(size=(40, 8)) as pilot:
        chart = app.query_one(ChartWidget)
        chart.add_series("loss", "red")
        await pilot.pause(0.03)
        lines = chart.plain_lines()
        assert any("no data yet" in line for line in lines) and braille_count(lines) == 0

        chart.append("loss", 7, 0.5)  # one point: x range centred on it, y range padded
        await pilot.pause(0.03)
        lines = chart.plain_lines()
        assert braille_count(lines) == 1 and "7" in lines[-1]

        chart.extend("loss", np.arange(8, 100), np.full(92, 0.5))  # constant: a flat line mid-height
        chart.extend("loss", [100, 101, 102], [np.nan, np.inf, -np.inf])
        await pilot.pause(0.03)
        lines = chart.plain_lines()
        plot = lines[1:-1]
        rows_with_dots = [i for i, line in enumerate(plot) if braille_count([line])]
        assert len(rows_with_dots) == 1 and 0 < rows_with_dots[0] < len(plot) - 1
        assert "3 non-finite" in lines[0]


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(1, 1), (5, 2), (12, 3), (30, 6)])
async def test_tiny_sizes_do_not_crash(size):
    app = ChartApp()
    async with app.run_test(size=size) as pilot:
        chart = app.query_one(ChartWidget)
        setup_series(chart)
        chart.extend("loss", np.arange(50), np.random.default_rng(1).random(50))
        await pilot.pause(0.03)
        lines = chart.plain_lines()
        width, height = chart.size
        assert 0 < height <= size[1] and len(lines) == height
        assert all(len(line) == width for line in lines)


@pytest.mark.anyio
async def test_million_points_and_zoom():
    app = ChartApp()
    async with app.run_test(size=(100, 30)) as pilot:
        chart = app.query_one(ChartWidget)
        chart.add_series("loss", "cyan")
        n = 1_000_000
        ys = np.full(n, 1.0)
        ys[123_456] = 9.0  # one spike in a million must still show
        chart.extend("loss", np.arange(n), ys)
        await pilot.pause(0.05)
        lines = chart.plain_lines()
        assert "9" in lines[1] and lines[-1].rstrip().endswith("1M")
        spike_rows = [line for line in lines[1:6] if braille_count([line])]
        assert spike_rows  # the spike reaches the top rows
        chart.set_x_range(500_000, 600_000)  # zoom: the spike is out of view, y range follows
        await pilot.pause(0.05)
        lines = chart.plain_lines()
        assert "9" not in lines[1] and "500k" in lines[-1]


@pytest.mark.anyio
async def test_series_api_errors():
    app = ChartApp()
    async with app.run_test(size=(40, 8)):
        chart = app.query_one(ChartWidget)
        with pytest.raises(ValueError):
            chart.add_series("x", "red", kind="bars")
        with pytest.raises(KeyError):
            chart.extend("missing", [1], [1])
        s = chart.add_series("loss", "red")
        s.extend([1, 2], [3, 4])
        assert chart.add_series("loss", "blue") is s  # re-adding restyles, keeps the data


def test_label_helpers():
    assert [fmt_step(v) for v in (0, 999, 12_345, 999_999, 2.5e7)] == ["0", "999", "12.3k", "1M", "25M"]
    assert padded_range(1.0, 1.0) == (0.9, 1.1)
    assert padded_range(0.0, 0.0) == (-1.0, 1.0)
    assert padded_range(np.inf, -np.inf) == (0.0, 1.0)
