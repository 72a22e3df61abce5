"""The configure screen in a Pilot: presets from the hardware, validation as you type, the command,
the device picker, save/load, preflight and launch through a fake launcher."""

from __future__ import annotations

import shlex
import tomllib

import pytest
from textual.widgets import Input, SelectionList

from core.store import Store
from tui.app import Gpt2App
from tui.screens.configure import ConfigureScreen
from tui.screens.help import HelpScreen
from tui.screens.live import LiveScreen
from tui.testing import FakeClock, FakeLauncher, FakeSampler, wait_for


@pytest.fixture
def anyio_backend():
    return "asyncio"  # Textual runs on asyncio; anyio's pytest plugin drives the async tests


@pytest.fixture(autouse=True)
def _empty_paddlenlp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))


def make_app(tmp_path, gpus=2, launcher=None):
    return Gpt2App(store_path=tmp_path / "runs.db", launcher=launcher or FakeLauncher(),
                   sampler=FakeSampler(gpus=gpus, samples=3), clock=FakeClock(), poll_interval=0.02,
                   sample_interval=0.02)


async def ready(pilot) -> ConfigureScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ConfigureScreen) and app.screen.preset is not None)
    await wait_for(pilot, lambda: app.screen.query_one("#command").command is not None)
    return app.screen


async def type_into(pilot, field: str, text: str) -> None:
    """Clear a field and type, as a user would."""
    screen = pilot.app.screen
    screen.form.control(field).focus()
    await pilot.press("end", "ctrl+u", *text)
    await pilot.pause()


@pytest.mark.anyio
async def test_gpu_found_starts_on_the_reference_preset_and_says_why(tmp_path):
    app = make_app(tmp_path, gpus=2)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        assert screen.preset == "reference"
        values = screen.form.values()
        assert values["model_name_or_path"] == "gpt2-medium-en" and values["learning_rate"] == "2e-05"
        banner = str(screen.query_one("#preset-banner").render())
        assert "reference recipe" in banner and "2 GPU(s) were found" in banner


@pytest.mark.anyio
async def test_cpu_only_starts_offline_and_ctrl_t_switches(tmp_path):
    app = make_app(tmp_path, gpus=0)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        assert screen.preset == "offline"
        assert "no GPU was found" in str(screen.query_one("#preset-banner").render())
        assert screen.form.values()["devices"] == "cpu:2"
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert screen.preset == "reference" and screen.form.values()["model_name_or_path"] == "gpt2-medium-en"


@pytest.mark.anyio
async def test_every_field_is_in_the_form_with_its_help(tmp_path):
    from core.config import RunConfig

    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        for name in RunConfig.field_names():
            row = screen.query_one(f"#row-{name}")
            assert str(row.query_one(".field-name").render()) == name
            assert str(row.query_one(".field-help").render()) == RunConfig.help_for(name)


@pytest.mark.anyio
async def test_invalid_value_marks_the_field_and_refuses_launch(tmp_path):
    fake = FakeLauncher()
    app = make_app(tmp_path, launcher=fake)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        await type_into(pilot, "learning_rate", "-1")
        row = screen.query_one("#row-learning_rate")
        assert row.has_class("-invalid")
        assert "must be > 0.0" in str(row.query_one(".field-error").render())
        assert screen.form.control("learning_rate").has_class("-invalid")
        assert screen.query_one("#command").command is None  # no command for an invalid config
        await pilot.press("ctrl+l")
        await pilot.pause(0.2)
        assert fake.launched == [] and isinstance(app.screen, ConfigureScreen)
        assert any("Launch refused" in n.message for n in app._notifications)
        # Not a number at all: the coercion error is shown on the same field.
        await type_into(pilot, "learning_rate", "fast")
        assert "expected a number" in str(row.query_one(".field-error").render())
        # Fixed: the mark goes away and the command is back.
        await type_into(pilot, "learning_rate", "3e-5")
        assert not row.has_class("-invalid")
        assert "--learning_rate 3e-05" in screen.query_one("#command").command


@pytest.mark.anyio
async def test_cross_field_and_device_problems_are_marked(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        await type_into(pilot, "devices", "gpu:7")
        assert "GPU 7 does not exist" in screen.problems["devices"]
        await type_into(pilot, "devices", "auto")
        await type_into(pilot, "nnodes", "2")
        assert "master" in screen.problems  # a multi-node job needs HOST:PORT
        await type_into(pilot, "master", "10.0.0.1:6170")
        assert screen.problems == {}


@pytest.mark.anyio
async def test_the_command_follows_the_form_and_copies(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        await type_into(pilot, "max_seq_length", "96")
        await type_into(pilot, "run_name", "my run")
        command = screen.query_one("#command").command
        argv = shlex.split(command)
        assert argv[argv.index("--max_seq_length") + 1] == "96"
        assert argv[argv.index("--run_name") + 1] == "my run"
        assert argv[argv.index("--devices") + 1] == "0,1"  # auto on two GPUs
        await pilot.press("ctrl+y")
        assert app.clipboard == command


@pytest.mark.anyio
async def test_device_picker_writes_the_devices_field(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        gpus = screen.query_one("#gpu-list", SelectionList)
        # auto = every GPU; the list fills from the first device sample, which can trail the command
        await wait_for(pilot, lambda: sorted(gpus.selected) == [0, 1])
        gpus.focus()
        await pilot.press("down", "down", "space")  # highlight GPU 0, then GPU 1; un-check it
        await wait_for(pilot, lambda: screen.form.values()["devices"] == "gpu:0")
        assert "--devices 0 " in screen.query_one("#command").command
        await type_into(pilot, "devices", "gpu:1")
        await pilot.pause()
        assert gpus.selected == [1]
        # CPU processes instead: the GPUs are unticked.
        procs = screen.query_one("#cpu-procs", Input)
        procs.focus()
        await pilot.press("backspace", "1")
        await wait_for(pilot, lambda: screen.form.values()["devices"] == "cpu:1")
        assert gpus.selected == []


@pytest.mark.anyio
async def test_save_and_load_toml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        await type_into(pilot, "seed", "7")
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("end", "ctrl+u", *"saved.toml", "enter")
        await wait_for(pilot, lambda: (tmp_path / "saved.toml").exists())
        data = tomllib.loads((tmp_path / "saved.toml").read_text())["run"]
        assert data["seed"] == 7 and data["model_name_or_path"] == "gpt2-medium-en"
        await type_into(pilot, "seed", "99")
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press("end", "ctrl+u", *"saved.toml", "enter")
        await wait_for(pilot, lambda: screen.form.values()["seed"] == "7")
        # A broken file is refused with its line and column; the form is left as it was.
        (tmp_path / "bad.toml").write_text("[run]\nseed = = 3\n")
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press("end", "ctrl+u", *"bad.toml", "enter")
        await pilot.pause(0.2)
        assert screen.form.values()["seed"] == "7"
        assert any("bad.toml:2" in n.message for n in app._notifications)


@pytest.mark.anyio
async def test_failed_preflight_refuses_launch(tmp_path):
    fake = FakeLauncher()
    app = make_app(tmp_path, launcher=fake)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        screen.form.set_value("data_dir", str(tmp_path / "no-such-data"))  # as if typed (a long path)
        await pilot.pause()
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: not screen.launching)
        assert fake.launched == []
        assert screen.query_one("#preflight").status_of("data") == "fail"
        assert "launch refused" in str(screen.query_one("#launch-status").render())


@pytest.mark.anyio
async def test_launch_goes_live_with_the_form_config(tmp_path):
    fake = FakeLauncher()
    app = make_app(tmp_path, launcher=fake)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+t")  # offline preset: everything is local, preflight passes
        await type_into(pilot, "run_name", "pilot-run")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen))
        assert [c.run_name for c in fake.launched] == ["pilot-run"]
        assert fake.launched[0].model_name_or_path == "gpt2-tiny"
        store = Store(tmp_path / "runs.db")
        assert store.get_run(fake.run_id)["name"] == "pilot-run"
        store.close()


@pytest.mark.anyio
async def test_help_and_command_palette_list_the_actions(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        await pilot.press("f1")  # '?' would type into the focused field
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = dict((d, k) for k, d in app.screen.keys)
        assert {"Launch", "Save", "Load", "Copy cmd", "Preset", "Help"} <= set(keys)
        await pilot.press("escape")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(screen)]
        assert {"Launch", "Save", "Load", "Running runs"} <= set(titles)


@pytest.mark.anyio
async def test_the_engine_is_a_choice_that_reaches_the_command_and_its_rules(tmp_path):
    """engine is a Select (gpt2-tui | paddlenlp): the command runs PaddleNLP's worker; an ours-only field set
    with it is marked, naming the field."""
    from textual.widgets import Select

    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        select = screen.form.control("engine")
        assert isinstance(select, Select) and select.value == "gpt2-tui"
        assert "core/train.py" in screen.query_one("#command").command
        screen.form.set_value("engine", "paddlenlp")
        await wait_for(pilot, lambda: "core/engine_paddlenlp.py" in (screen.query_one("#command").command or ""))
        assert screen.form.values()["engine"] == "paddlenlp"
        await type_into(pilot, "max_restart", "2")
        await type_into(pilot, "master", "etcd://127.0.0.1:2379")
        assert "--engine paddlenlp" in screen.problems["max_restart"]
        screen.form.set_value("engine", "gpt2-tui")
        await wait_for(pilot, lambda: "max_restart" not in screen.problems)


@pytest.mark.anyio
async def test_up_and_down_pass_over_the_engine_choice_and_enter_opens_it(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        screen.form.control("run_name").focus()
        await pilot.press("down")
        assert app.focused is screen.form.control("engine")
        await pilot.press("down")
        assert app.focused is not screen.form.control("engine") and not screen.form.control("engine").expanded
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: screen.form.control("engine").expanded)
