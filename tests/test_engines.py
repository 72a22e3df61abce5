"""--engine: the choice, the fields only our engine honours, and the TrainingArguments a config becomes."""

import json

import pytest

from core import cli
from core.config import RunConfig
from core.engines import OURS_ONLY, training_arguments
from core.presets import offline_preset


def test_old_config_without_engine_loads_as_ours(tmp_path):
    old = RunConfig().to_dict()
    del old["engine"]
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = RunConfig.from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert cfg.engine == "gpt2-tui" and cfg.validate() == []


def test_the_flag_reaches_the_config_and_a_wrong_word_is_named():
    args = cli.build_parser().parse_args(["train", "--preset", "offline", "--engine", "paddlenlp"])
    assert cli.config_from_args(args).engine == "paddlenlp"
    assert [w for w, _ in offline_preset().replace(engine="hf").validate()] == ["engine"]


@pytest.mark.parametrize(("name", "value"), [("flash_attention_drops_dropout", True), ("max_restart", 2)])
def test_ours_only_fields_are_refused_with_paddlenlp_naming_the_field(name, value):
    changes = {name: value, **({"master": "etcd://127.0.0.1:2379"} if name == "max_restart" else {})}
    assert offline_preset().replace(**changes).validate() == []  # fine with our engine
    problems = offline_preset().replace(engine="paddlenlp", **changes).validate()
    assert [w for w, _ in problems] == [name]
    assert "--engine paddlenlp" in problems[0][1] and problems[0][1].endswith(OURS_ONLY[name])


def test_paddlenlp_takes_the_shared_fields():
    cfg = offline_preset().replace(engine="paddlenlp", fp16=True, gradient_accumulation_steps=2, save_total_limit=3,
                                   stop_on_nan=False, fast_path="off")
    assert cfg.validate() == []


def test_training_arguments_follow_the_config():
    cfg = offline_preset().replace(learning_rate=3e-4, max_steps=7, warmup_steps=2, save_total_limit=2,
                                   evaluation_strategy="epoch", seed=9, bf16=True)
    ta = training_arguments(cfg, "/out", "gpu")
    assert (ta["learning_rate"], ta["max_steps"], ta["warmup_steps"], ta["seed"]) == (3e-4, 7, 2, 9)
    assert (ta["evaluation_strategy"], ta["save_total_limit"], ta["metric_for_best_model"]) == ("epoch", 2, "accuracy")
    assert ta["bf16"] is True and ta["fp16"] is False and ta["device"] == "gpu" and ta["output_dir"] == "/out"
    off = training_arguments(cfg.replace(do_eval=False, save_total_limit=0), "/out", "cpu")
    assert off["evaluation_strategy"] == "no" and off["metric_for_best_model"] is None
    assert off["save_total_limit"] is None  # PaddleNLP's "keep all"


def test_use_amp_is_bf16_where_the_gpu_has_it_else_fp16_and_nothing_on_cpu():
    from core.presets import reference_preset

    cfg = reference_preset().replace(engine="paddlenlp")
    assert cfg.use_amp and cfg.validate() == []  # the reference preset runs on either engine
    pick = {(d, ok): (training_arguments(cfg, "/o", d, ok)["fp16"], training_arguments(cfg, "/o", d, ok)["bf16"])
            for d, ok in (("gpu", True), ("gpu", False), ("cpu", False))}
    assert pick == {("gpu", True): (False, True), ("gpu", False): (True, False), ("cpu", False): (False, False)}
    assert training_arguments(cfg.replace(fp16=True), "/o", "gpu", True)["bf16"] is False  # an explicit choice wins
    assert training_arguments(cfg.replace(fp16=True), "/o", "cpu")["fp16"] is False  # on a GPU only, as ours


def test_training_arguments_are_accepted_by_paddlenlp():
    """Every key is a real TrainingArguments field (read from its source: no paddle import here)."""
    import ast
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("paddlenlp")
    src = Path(spec.origin).parent / "trainer" / "training_args.py"
    tree = ast.parse(src.read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "TrainingArguments")
    names = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    assert set(training_arguments(offline_preset(), "/o", "cpu")) <= names


def test_paddlenlp_cannot_continue_from_our_checkpoint_and_says_so(tmp_path):
    from core.engines import resume_problem

    ours, theirs = tmp_path / "checkpoint-4", tmp_path / "checkpoint-9"
    for d, files in ((ours, ["model_state.pdparams", "optimizer.pdopt", "gpt2tui_state.json"]),
                     (theirs, ["model_state.pdparams", "optimizer.pdopt", "scheduler.pdparams"])):
        d.mkdir()
        for f in files:
            (d / f).write_text("x")
    why = resume_problem("paddlenlp", ours)
    assert why and "checkpoint-4" in why and "--engine gpt2-tui" in why
    assert resume_problem("paddlenlp", theirs) is None
    assert resume_problem("gpt2-tui", ours) is None and resume_problem("gpt2-tui", theirs) is None  # ours reads both
