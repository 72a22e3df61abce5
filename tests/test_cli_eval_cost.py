"""core.eval_cost: the share of a run that evaluation takes, and the warnings `train` and the preflight give.

Meaning chosen (docs/FLAGS.md): our evaluation_strategy defaults to 'steps', so the reference command's
`--eval_steps 1` evaluates after every step; the warning tells the user what that costs.
"""

import pytest

from core import eval_cost
from core.cli_train import warn_eval_cost
from core.config import RunConfig
from core.presets import offline_preset, reference_preset
from tui import preflight
from tui.preflight import OK, WARN
from tui.testing import fake_report

SST2 = (67_349, 872)


def test_the_reference_command_on_sst2_is_mostly_evaluation():
    cost = eval_cost.estimate(reference_preset().replace(eval_steps=1), *SST2, world=1)
    # 32 samples x 3 forwards of training against 872 forwards of evaluation, every step
    assert cost.share == pytest.approx(872 / (872 + 96))
    assert cost.eval_batches == 28 and cost.evaluations == cost.total_steps == 3 * 2105
    text = eval_cost.warning(cost)
    assert text.startswith("evaluation would take ~90 % of the run's time: 28 eval batches every step")
    steps, share = cost.suggestion
    assert share <= eval_cost.SUGGEST_SHARE and f"--eval_steps {steps} would make it ~" in text


def test_the_reference_recipe_itself_is_fine():
    cost = eval_cost.estimate(reference_preset(), *SST2, world=8)
    assert cost.share < 0.05 and eval_cost.warning(cost) is None
    assert eval_cost.summary(cost) == "<1 % of the run's time: 2 evaluation(s) of 4 batch(es), every 500 steps"


@pytest.mark.parametrize(("changes", "evaluations"), [
    ({"evaluation_strategy": "no"}, 1),  # only the final evaluation
    ({"evaluation_strategy": "epoch"}, 3),
    ({"do_eval": False}, 0),
    ({"eval_steps": 1000}, 7),  # 6315 steps: 6 on the way and the final one
    ({"max_steps": 1000, "eval_steps": 500}, 2),  # the last step is a multiple: no extra final one
])
def test_evaluations_follow_the_strategy(changes, evaluations):
    cost = eval_cost.estimate(reference_preset().replace(**changes), *SST2, world=1)
    assert cost.evaluations == evaluations


def test_more_ranks_split_both_sides_and_accumulation_makes_steps_longer():
    one = eval_cost.estimate(RunConfig(eval_steps=10), *SST2, world=1)
    four = eval_cost.estimate(RunConfig(eval_steps=10, per_device_train_batch_size=8), *SST2, world=4)
    assert four.share == pytest.approx(one.share, rel=0.05)
    acc = eval_cost.estimate(RunConfig(eval_steps=10, gradient_accumulation_steps=4), *SST2, world=1)
    assert acc.share < one.share and acc.total_steps == pytest.approx(one.total_steps / 4, abs=3)  # rounding per epoch


def test_count_rows(tmp_path):
    (tmp_path / "a.tsv").write_text("sentence\tlabel\nx\t1\ny\t0\n")
    (tmp_path / "b.tsv").write_text("sentence\tlabel\nx\t1\ny\t0")  # no final newline
    assert eval_cost.count_rows(tmp_path / "a.tsv") == eval_cost.count_rows(tmp_path / "b.tsv") == 2


def test_train_prints_the_warning(capsys):
    from core.config import SAMPLE_DATA_DIR

    warn_eval_cost(offline_preset().replace(eval_steps=1), str(SAMPLE_DATA_DIR), 2)
    err = capsys.readouterr().err
    assert err.startswith("warning: evaluation would take ~") and "every step" in err
    warn_eval_cost(offline_preset().replace(eval_steps=10**6), str(SAMPLE_DATA_DIR), 2)
    assert capsys.readouterr().err == ""


def test_preflight_warns_with_the_estimate(monkeypatch, tmp_path):
    monkeypatch.setenv("PPNLP_HOME", str(tmp_path / "ppnlp"))  # GLUE not downloaded: its known row counts
    report = fake_report(1, gpus=2)
    c = preflight.check_eval(reference_preset().replace(eval_steps=1, devices="gpu:0"), report)
    assert c.status == WARN and "~90 %" in c.detail and "--eval_steps" in c.detail
    c = preflight.check_eval(reference_preset(), report)
    assert c.status == OK and "of the run's time" in c.detail
    c = preflight.check_eval(offline_preset().replace(data_dir=str(tmp_path / "none")), report)
    assert c.status == OK and "cannot estimate" in c.detail
    names = [x.name for x in preflight.run_preflight(offline_preset(), tmp_path / "runs", report)]
    assert "eval" in names and "recipe" in names
