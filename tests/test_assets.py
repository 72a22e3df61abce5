"""The bundled assets: the SST-2-format sample and the gpt2-tiny model (loads offline with paddlenlp)."""

from __future__ import annotations

import importlib.util
import json
import socket
import statistics
from pathlib import Path

import pytest

from core.data import read_split

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLE = ASSETS / "sst2-sample"
TINY = ASSETS / "gpt2-tiny"
EOS = "<|endoftext|>"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ASSETS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def folder_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


# ----------------------------------------------------------------------------- sample
def test_sample_files_are_sst2_format():
    assert (SAMPLE / "train.tsv").read_text(encoding="utf-8").startswith("sentence\tlabel\n")
    assert (SAMPLE / "dev.tsv").read_text(encoding="utf-8").startswith("sentence\tlabel\n")
    assert (SAMPLE / "test.tsv").read_text(encoding="utf-8").startswith("index\tsentence\n")
    train, dev = read_split(SAMPLE / "train.tsv"), read_split(SAMPLE / "dev.tsv")
    test = read_split(SAMPLE / "test.tsv", labelled=False)
    assert (len(train), len(dev), len(test)) == (3000, 300, 200)
    assert {y for _, y in train} == {0, 1} == {y for _, y in dev}


def test_no_dev_or_test_sentence_in_train():
    train = {s for s, _ in read_split(SAMPLE / "train.tsv")}
    assert not train & {s for s, _ in read_split(SAMPLE / "dev.tsv")}
    assert not train & {s for s, _ in read_split(SAMPLE / "test.tsv", labelled=False)}


def test_sample_text_like_sst2():
    rows = read_split(SAMPLE / "train.tsv") + read_split(SAMPLE / "dev.tsv")
    assert not any(EOS in s for s, _ in rows)
    assert all(s == s.lower() for s, _ in rows)
    lens = [len(s.split()) for s, _ in rows]
    assert statistics.median(lens) <= 12, "mostly short phrases, like SST-2"
    assert sum(n > 50 for n in lens) >= 20, "a tail of long sentences exercises truncation"
    assert any("not" in s.split() for s, _ in rows), "negation present"


def test_sample_regenerates_byte_for_byte(tmp_path):
    make_sample = load_script("make_sample")
    make_sample.write(make_sample.build(), tmp_path)
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name


# ----------------------------------------------------------------------------- tiny model files
def test_tiny_model_is_small():
    assert folder_bytes(TINY) < 5_000_000
    assert folder_bytes(TINY) + folder_bytes(SAMPLE) < 5_000_000


def test_tokenizer_files_format():
    merges = (TINY / "merges.txt").read_text(encoding="utf-8")
    assert merges.startswith("#version: 0.2\n") and merges.endswith("\n")
    vocab = json.loads((TINY / "vocab.json").read_text(encoding="utf-8"))
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert vocab[EOS] == len(vocab) - 1
    assert 1000 <= len(vocab) <= 2000
    build_tiny = load_script("build_tiny")
    assert all(vocab[c] < 256 for c in build_tiny.bytes_to_unicode().values()), "all 256 byte symbols"
    cfg = json.loads((TINY / "config.json").read_text(encoding="utf-8"))
    assert cfg["vocab_size"] == len(vocab)
    assert cfg["eos_token_id"] == cfg["pad_token_id"] == vocab[EOS]
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["max_position_embeddings"]) == (64, 2, 256)


def test_bpe_rebuilds_the_same_tokenizer():
    build_tiny = load_script("build_tiny")
    vocab, merges = build_tiny.train_bpe(build_tiny.read_sentences(SAMPLE / "train.tsv"))
    assert vocab == json.loads((TINY / "vocab.json").read_text(encoding="utf-8"))
    assert [" ".join(m) for m in merges] == (TINY / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]


# ----------------------------------------------------------------------------- loads in paddlenlp
@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test: loading the bundled model must never need the network."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access while loading the tiny model: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_tiny_loads_offline_for_classification_and_lm(no_network):
    import paddle
    from paddlenlp.transformers import GPTForCausalLM, GPTForSequenceClassification, GPTTokenizer

    tok = GPTTokenizer.from_pretrained(str(TINY))
    assert tok.eos_token_id == tok.pad_token_id == len(tok) - 1
    rows = read_split(SAMPLE / "dev.tsv")
    for s, _ in rows:
        ids = tok(s)["input_ids"]
        assert tok.eos_token_id not in ids
        assert tok.decode(ids, clean_up_tokenization_spaces=False) == s
    longest = max(len(tok(s)["input_ids"]) for s, _ in rows + read_split(SAMPLE / "train.tsv"))
    assert 64 < longest <= 256, "some rows are truncated at max_seq_length 64, none at the model's 256"

    clf = GPTForSequenceClassification.from_pretrained(str(TINY), num_labels=2)
    clf.eval()
    batch = [tok(s)["input_ids"] for s, _ in rows[:4]]
    width = max(map(len, batch))
    x = paddle.to_tensor([b + [tok.pad_token_id] * (width - len(b)) for b in batch])  # right-pad with EOS
    assert clf(x).shape == [4, 2]

    lm = GPTForCausalLM.from_pretrained(str(TINY))
    lm.eval()
    assert lm(x).shape == [4, width, len(tok)]
