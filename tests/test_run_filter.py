"""The runs filter language (core.run_filter): words, phrases, keys, settings, numbers, negation, errors."""

from __future__ import annotations

import json

import pytest

from core.export import LazyJson
from core.run_filter import FilterError, parse, select
from tui.compare_logic import filter_rows


def rows():
    return [
        {"id": "20261201-101010-aaaa", "name": "baseline", "status": "finished", "model": "gpt2-tiny",
         "devices": "cpu:2", "tags": ["Best", "sweep"], "note": "the one we ship", "steps": 40, "total_steps": 40,
         "best_accuracy": 0.91, "final_loss": 0.31, "mean_samples_per_s": 120.0, "duration_s": 400.0,
         "config": {"learning_rate": 3e-4, "per_device_train_batch_size": 32, "max_seq_length": 128,
                    "num_train_epochs": 3.0, "use_amp": False, "model_name_or_path": "gpt2-tiny",
                    "evaluation_strategy": "steps"}},
        {"id": "20261201-111111-bbbb", "name": "higher lr", "status": "failed", "model": "gpt2-medium-en",
         "devices": "gpu:0,1", "tags": [], "note": None, "steps": 3, "total_steps": 300, "best_accuracy": None,
         "final_loss": None, "mean_samples_per_s": 30.5, "duration_s": 90.0,
         # JSON text, as the store keeps it; the engine setting of issue 12
         "config": LazyJson(json.dumps({"learning_rate": 2e-5, "per_device_train_batch_size": 16, "use_amp": True,
                                        "model_name_or_path": "gpt2-medium-en", "engine": "paddlenlp"}))},
        # a watched command: its config knows only the name
        {"id": "20261202-121212-cccc", "name": "watched script", "status": "running", "model": None,
         "devices": None, "tags": "[\"sweep\"]", "note": "OOM at step 12?", "steps": None, "total_steps": None,
         "best_accuracy": None, "final_loss": None, "mean_samples_per_s": None, "duration_s": 5.0,
         "config": '{"run_name": "watched script"}'},
    ]


def names(text: str) -> list[str]:
    return [r["name"] for r in select(rows(), text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("", ["baseline", "higher lr", "watched script"]),
    ("   ", ["baseline", "higher lr", "watched script"]),
    ("BASE", ["baseline"]),
    ("gpu", ["higher lr"]),
    ("tiny cpu:2", ["baseline"]),  # every word; a devices value is a word, not a key
    ("gpu:0,1", ["higher lr"]),
    ("best", ["baseline"]),  # tags are searched by free words
    ("ship", ["baseline"]),  # and notes
    ("oom", ["watched script"]),
    ('"higher lr"', ["higher lr"]),
    ('"lr higher"', []),
    ("bbbb", ["higher lr"]),  # the id
])
def test_free_words_and_phrases(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("tag:best", ["baseline"]),  # any case
    ("tag:sweep", ["baseline", "watched script"]),
    ("tag:swe", []),  # a tag is matched whole
    ("-tag:sweep", ["higher lr"]),
    ("status:failed", ["higher lr"]),
    ("status:RUNNING", ["watched script"]),
    ("-status:finished -status:failed", ["watched script"]),
    ("name:lr", ["higher lr"]),  # text: contains
    ("name=lr", []),  # text: is
    ("name='higher", []),
    ('name:"higher lr"', ["higher lr"]),
    ('name="higher lr"', ["higher lr"]),
    ("name!=baseline", ["higher lr", "watched script"]),
    ("model:medium", ["higher lr"]),
    ("model_name_or_path:gpt2-medium-en", ["higher lr"]),
    ("devices:cpu", ["baseline"]),
    ("note:ship", ["baseline"]),
    ("engine:paddlenlp", ["higher lr"]),
    ("engine=gpt2-tui", ["baseline", "watched script"]),  # no engine setting: our trainer (older configs)
    ("evaluation_strategy:steps", ["baseline"]),
    ("id:20261202", ["watched script"]),
])
def test_keys(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("lr>1e-4", ["baseline"]),
    ("lr<=2e-5", ["higher lr"]),
    ("lr=0.0003", ["baseline"]),  # numbers compare as numbers, not as text
    ("lr:3e-4", ["baseline"]),
    ("learning_rate!=3e-4", ["higher lr"]),  # the watched run has no learning rate: no comparison matches it
    ("-lr>1e-4", ["higher lr", "watched script"]),  # ... but leaving out what matches keeps it
    ("acc>=0.9", ["baseline"]),
    ("acc<0.9", []),  # no accuracy is not an accuracy below 0.9
    ("steps<100", ["baseline", "higher lr"]),
    ("bs=32", ["baseline"]),
    ("bs>=16 bs<32", ["higher lr"]),
    ("seq:128", ["baseline"]),
    ("epochs=3", ["baseline"]),  # 3 == 3.0
    ("loss<0.5", ["baseline"]),
    ("sps>100", ["baseline"]),
    ("duration<100", ["higher lr", "watched script"]),
    ("use_amp:true", ["higher lr"]),
    ("use_amp:no", ["baseline"]),
    ("use_amp!=true", ["baseline"]),
])
def test_numbers_and_booleans(text, expected):
    assert names(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("lr>abc", "'lr>abc': 'abc' is not a number"),
    ("foo:bar", "unknown key 'foo' (known: id, name, status, model"),
    ("lrr>1e-4", "unknown key 'lrr'; did you mean lr?"),
    ("status:runing", "unknown status 'runing' (one of running, finished"),
    ("name>b", "'>' compares numbers, and name is text"),
    ("tag>=1", "'>=' compares numbers"),
    ("use_amp:maybe", "use_amp: expected true or false, got 'maybe'"),
    ("lr:", "no value after 'lr:'"),
    ('"unclosed phrase', "unclosed quote"),
    ("baseline -", "nothing after '-'"),
    ("acc>=nan", "is not a number"),
])
def test_malformed_filters_say_what_is_wrong(text, message):
    with pytest.raises(FilterError) as err:
        parse(text)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_quoted_operators_are_text_and_the_config_is_decoded_only_when_asked():
    assert names('"lr>1"') == []  # a phrase, not a comparison
    lazy = rows()[1]["config"]
    assert isinstance(lazy, LazyJson)
    parse("gpu tag:x status:failed").matches(rows()[1] | {"config": lazy})
    assert lazy._value is None  # no setting was asked for
    parse("lr<1").matches(rows()[1] | {"config": lazy})
    assert lazy._value is not None and lazy == {**lazy}  # equal to its decoded self


def test_history_filter_rows_delegates_and_keeps_the_status_select():
    assert [r["name"] for r in filter_rows(rows(), "tag:sweep", "running")] == ["watched script"]
    assert [r["name"] for r in filter_rows(rows(), "", "all")] == ["baseline", "higher lr", "watched script"]
    with pytest.raises(FilterError):
        filter_rows(rows(), "lr>abc")


def test_tag_not_equal():
    assert names("tag!=sweep") == ["higher lr"]
    assert names("tag=BEST") == ["baseline"]
