"""The configure screen's paste box (ctrl+v): a pasted run_glue command fills the form, what could not be
mapped is shown, and the command preview is still the exact command we run."""

from __future__ import annotations

import pytest
from test_tui_configure import make_app, ready, wait_for
from textual.widgets import TextArea

from tui.widgets.command_paste import CommandPaste, form_values

PASTED = ("CUDA_VISIBLE_DEVICES=0,1 python3 -m paddle.distributed.launch --gpus \"0,1\" run_glue.py \\\n"
          "  --model_name_or_path gpt2-tiny --task_name SST-2 --max_seq_length 128 \\\n"
          "  --per_device_train_batch_size 32 --learning_rate 2e-5 --num_train_epochs 3 --logging_steps 1 \\\n"
          "  --save_steps 500 --output_dir ./output_dir/glue --eval_steps 1 --device gpu --do_train true \\\n"
          "  --report_to visualdl --overwrite_output_dir")


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def _empty_paddlenlp_home(tmp_path, monkeypatch):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))


def test_form_values_turn_booleans_into_checkbox_values():
    values, unmapped = form_values("run_glue.py --do_eval false --fp16 --stop_on_nan maybe --seed 3")
    assert values == {"do_eval": False, "fp16": True, "seed": "3"}
    assert unmapped == ["--stop_on_nan maybe (not true/false)"]


@pytest.mark.anyio
async def test_pasting_the_reference_command_fills_the_form(tmp_path):
    app = make_app(tmp_path, gpus=2)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        await pilot.press("ctrl+v")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPaste))
        app.screen.query_one("#paste-input", TextArea).text = PASTED  # as a terminal paste would
        await pilot.press("ctrl+l")  # in the box: fill the form (not launch)
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.pause()
        v = screen.form.values()
        assert v["model_name_or_path"] == "gpt2-tiny" and v["task_name"] == "SST-2"
        assert v["per_device_train_batch_size"] == "32" and v["eval_steps"] == "1"
        assert v["devices"] == "gpu:0,1" and v["device"] == "gpu" and v["output_dir"] == "./output_dir/glue"
        assert v["do_train"] is True and v["overwrite_output_dir"] is True
        banner = str(screen.query_one("#preset-banner").render())
        assert "pasted command" in banner and "--report_to visualdl" in banner
        assert any("--report_to visualdl" in n.message for n in app._notifications)
        await wait_for(pilot, lambda: screen.cfg is not None and screen.query_one("#command").command is not None)
        command = screen.query_one("#command").command
        assert "--eval_steps 1" in command and "--per_device_train_batch_size 32" in command
        assert "paddle.distributed.launch" in command  # the preview is still our exact command


@pytest.mark.anyio
async def test_escape_leaves_the_form_alone_and_a_bad_value_is_marked(tmp_path):
    app = make_app(tmp_path, gpus=2)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await ready(pilot)
        before = screen.form.values()
        await pilot.press("ctrl+v")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPaste))
        app.screen.query_one("#paste-input", TextArea).text = "run_glue.py --seed 5"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.form.values() == before
        await pilot.press("ctrl+v")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPaste))
        app.screen.query_one("#paste-input", TextArea).text = "run_glue.py --learning_rate fast"
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(pilot, lambda: "learning_rate" in screen.problems)
        assert "expected a number" in screen.problems["learning_rate"]
