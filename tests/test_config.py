"""RunConfig: coercion, validation naming fields, TOML errors with line and column."""

import pytest

from core.config import ConfigError, RunConfig
from core.config_toml import dump_toml, load_toml
from core.presets import offline_preset, reference_preset


def test_reference_defaults_match_the_recipe():
    cfg = RunConfig()
    assert (cfg.max_seq_length, cfg.per_device_train_batch_size, cfg.learning_rate, cfg.num_train_epochs) == (
        128, 32, 2e-5, 3.0)
    assert cfg.logging_steps == 1 and cfg.save_steps == 500
    assert reference_preset().model_name_or_path == "gpt2-medium-en"
    assert offline_preset().model_name_or_path == "gpt2-tiny"


def test_every_field_has_help():
    for name in RunConfig.field_names():
        assert RunConfig.help_for(name), name


def test_strings_from_a_form_are_coerced():
    cfg = RunConfig.from_dict({"learning_rate": "1e-4", "max_steps": "40", "use_amp": "true"})
    assert cfg.learning_rate == 1e-4 and cfg.max_steps == 40 and cfg.use_amp is True


@pytest.mark.parametrize("key,value,needle", [
    ("learning_rate", "fast", "expected a number"),
    ("max_steps", "4.5", "expected an integer"),
    ("use_amp", "maybe", "true or false"),
    ("learning_rate", "nan", "finite"),
])
def test_wrong_types_name_the_field(key, value, needle):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({key: value})
    assert e.value.problems[0][0] == key and needle in e.value.problems[0][1]


@pytest.mark.parametrize("changes,field", [
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size"),
    ({"max_seq_length": 5000}, "max_seq_length"),
    ({"warmup_ratio": 1.5}, "warmup_ratio"),
    ({"devices": "tpu:1"}, "devices"),
    ({"task_name": "cola"}, "task_name"),
    ({"nnodes": 2}, "master"),
    ({"nnodes": 2, "master": "127.0.0.1:6170", "node_rank": 2}, "node_rank"),
])
def test_out_of_range_values_are_reported_per_field(changes, field):
    problems = RunConfig().replace(**changes).validate()
    assert field in [p[0] for p in problems]


def test_valid_config_has_no_problems():
    assert RunConfig().validate() == []
    assert offline_preset().validate() == []


def test_unknown_key_names_the_nearest(tmp_path):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"learning_rte": 1e-3}, source="x.toml")
    assert "learning_rte" in e.value.problems[0][0] and "learning_rate" in e.value.problems[0][1]


def test_toml_syntax_error_has_line_and_column(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[run]\nlearning_rate = 1e-3\nmax_steps = = 4\n")
    with pytest.raises(ConfigError) as e:
        load_toml(p)
    assert f"{p}:3:" in e.value.problems[0][0]


def test_toml_round_trip(tmp_path):
    cfg = offline_preset().replace(run_name='a "quoted" name; $(rm -rf /)')
    p = tmp_path / "c.toml"
    p.write_text(dump_toml(cfg))
    assert RunConfig.from_dict(load_toml(p)) == cfg


def test_device_cpu_turns_auto_or_gpu_devices_into_two_cpu_processes():
    assert RunConfig(device="cpu", devices="auto").device_spec() == "cpu:2"
    assert RunConfig(device="cpu", devices="gpu:0").device_spec() == "cpu:2"
    assert RunConfig(device="cpu", devices="cpu:1").device_spec() == "cpu:1"
    assert RunConfig(device="auto", devices="gpu:0,1").device_spec() == "gpu:0,1"


def test_elastic_restarts_need_an_etcd_master_on_one_node():
    from core.config import RunConfig

    assert RunConfig(master="etcd://127.0.0.1:2379", max_restart=2).validate() == []
    assert [k for k, _ in RunConfig(max_restart=1).validate()] == ["max_restart"]
    assert [k for k, _ in RunConfig(master="10.0.0.1:6170", nnodes=2, max_restart=1).validate()] == ["max_restart"]
    problems = dict(RunConfig(master="etcd://h:2379", nnodes=2).validate())
    assert "supported for one node" in problems["master"]
    assert [k for k, _ in RunConfig(master="etcd://-h:2379").validate()] == ["master"]
    assert [k for k, _ in RunConfig(master="etcd://127.0.0.1:2379", max_restart=-1).validate()] == ["max_restart"]
