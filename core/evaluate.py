"""The evaluation worker: scores one checkpoint on one labelled SST-2 file, events in EVAL_RUN/events.jsonl.

``python core/evaluate.py --run_dir EVAL_RUN --checkpoint DIR --eval_path FILE.tsv [--mode classify|cloze]
[--device auto|cpu|gpu] [--batch_size 64] [--max_seq_length N] [--tokenizer DIR]`` (or ``-m core.evaluate``).

Modes:

- ``classify`` (default): GPTForSequenceClassification from the checkpoint, tokenised, truncated and
  padded exactly as core.train does, so it reproduces the training run's own dev accuracy.
- ``cloze``: GPTForCausalLM from the checkpoint, no classification head needed (a base model works).
  Each sentence becomes the prompt ``"{sentence} It was"``; the label words are ``" terrible"`` (0)
  and ``" great"`` (1). A word's score is the sum of the log-probabilities of its tokens after the
  prompt; the higher score is the prediction. ``loss`` is the mean cross-entropy of the two-way
  softmax over the scores. Long sentences are cut from their end so the prompt's " It was" stays.

Events: ``start`` (total_steps = number of batches), a ``step`` per batch, one ``eval`` (step = the
checkpoint's global step from gpt2tui_state.json or trainer_state.json, else 0; accuracy, loss, n, mode, eval_path,
checkpoint, precision/recall/f1 per class, confusion [[tn, fp], [fn, tp]] with rows = true label),
then ``end``. Any error: ``end`` failed with the reason, exit status 1.

The tokenizer comes from ``--tokenizer``, else the checkpoint, else its parent folder (PaddleNLP's
run_glue saves it in output_dir), else the model folder the training run used.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `core` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

from core import batching, checkpoint_files  # noqa: E402
from core.events import EventWriter  # noqa: E402
from core.trainer.checkpoints import load_classifier  # noqa: E402
from core.trainer.encoding import encode_split, pad_id_for  # noqa: E402
from core.trainer.evaluation import predict  # noqa: E402
from core.trainer.phases import Phases  # noqa: E402
from core.trainer.runtime import device_label, pick_device, set_device, versions  # noqa: E402

CLOZE_PROMPT = "{sentence} It was"
CLOZE_WORDS = (" terrible", " great")  # label 0, label 1
DEFAULT_MAX_SEQ_LENGTH = 128
WEIGHT_FILES = checkpoint_files.WEIGHT_FILES


class EvalError(RuntimeError):
    """A problem the user can fix (missing tokenizer, no LM weights ...); the message says how."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="core/evaluate.py",
        description="Evaluate a GPT-2 checkpoint on a labelled SST-2 TSV (gpt2-tui worker).",
    )
    p.add_argument("--run_dir", required=True, help="Evaluation folder: events.jsonl goes here.")
    p.add_argument("--checkpoint", required=True, help="Model folder or checkpoint-N folder (config.json + weights).")
    p.add_argument("--eval_path", required=True, help="Labelled TSV with a 'sentence<TAB>label' header.")
    p.add_argument("--mode", choices=("classify", "cloze"), default="classify",
                   help="classify: the fine-tuned classification head. cloze: no head; prompt "
                        f"'{CLOZE_PROMPT}', label words '{CLOZE_WORDS[0]}' (0) / '{CLOZE_WORDS[1]}' (1), "
                        "the word with the higher summed token log-probability wins.")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="Where to run.")
    p.add_argument("--batch_size", type=int, default=64, help="Rows per batch.")
    p.add_argument("--max_seq_length", type=int, default=None,
                   help="Token limit; default: the checkpoint's training value (gpt2tui_state.json), else 128.")
    p.add_argument("--tokenizer", default=None, help="Tokenizer folder when the checkpoint has none.")
    return p


# --------------------------------------------------------------------------- locating things
def read_trainer_state(ckpt: Path) -> dict[str, Any]:
    """gpt2tui_state.json, else trainer_state.json (older checkpoints of ours, PaddleNLP's), else {}."""
    return checkpoint_files.read_state(ckpt)


def _has_tokenizer(d: Path) -> bool:
    return (d / "vocab.json").is_file() and (d / "merges.txt").is_file()


def tokenizer_candidates(ckpt: Path, explicit: str | None, state: dict[str, Any]) -> list[Path]:
    out: list[Path] = []
    if explicit:
        out.append(Path(explicit))
    out += [ckpt, ckpt.parent]
    if state.get("model_dir"):
        out.append(Path(state["model_dir"]))
    # our own runs: RUN/checkpoints/checkpoint-N, and RUN/command.json holds the trainer's argv
    cmd = ckpt.parent.parent / "command.json"
    try:
        argv = json.loads(cmd.read_text()).get("argv", [])
        if "--model_dir" in argv:
            out.append(Path(argv[argv.index("--model_dir") + 1]))
    except (OSError, ValueError, AttributeError, IndexError):
        pass
    return out


def load_tokenizer(ckpt: Path, explicit: str | None, state: dict[str, Any]) -> Any:
    from paddlenlp.transformers import GPTTokenizer

    if explicit and not _has_tokenizer(Path(explicit)):
        raise EvalError(f"--tokenizer {explicit}: no vocab.json + merges.txt there")
    for d in tokenizer_candidates(ckpt, explicit, state):
        if _has_tokenizer(d):
            return GPTTokenizer.from_pretrained(str(d))
    raise EvalError(f"no tokenizer (vocab.json + merges.txt) in {ckpt}, its parent folder or the training "
                    f"run's model folder: pass --tokenizer DIR (the model folder the run was trained from)")


def check_checkpoint(ckpt: Path) -> None:
    if not ckpt.is_dir():
        raise EvalError(f"checkpoint {ckpt} is not a folder")
    if not (ckpt / "config.json").is_file():
        raise EvalError(f"checkpoint {ckpt} has no config.json (is it a PaddleNLP model folder?)")
    if not any((ckpt / f).is_file() for f in WEIGHT_FILES):
        raise EvalError(f"checkpoint {ckpt} has no weights ({' or '.join(WEIGHT_FILES[:2])})")


def weight_keys(ckpt: Path) -> set[str] | None:
    """Names of the tensors in the checkpoint's weights (None when they cannot be listed cheaply)."""
    for name in ("model_state.pdparams.index.json", "model.safetensors.index.json"):
        with contextlib.suppress(Exception):
            return set(json.loads((ckpt / name).read_text())["weight_map"])
    if (ckpt / "model.safetensors").is_file():
        with contextlib.suppress(Exception):
            from safetensors import safe_open

            with safe_open(str(ckpt / "model.safetensors"), framework="np") as fh:
                return set(fh.keys())
    if (ckpt / "model_state.pdparams").is_file():
        with contextlib.suppress(Exception):
            return set(paddle.load(str(ckpt / "model_state.pdparams"), return_numpy=True).keys())
    return None


def load_causal_lm(ckpt: Path) -> Any:
    from paddlenlp.transformers import GPTForCausalLM

    keys = weight_keys(ckpt)
    if keys is not None:
        has_emb = any(k.endswith("embeddings.word_embeddings.weight") for k in keys)
        has_layers = any(".layers.0." in k or k.startswith("layers.0.") for k in keys)
        if not (has_emb and has_layers):
            raise EvalError(f"{ckpt} has no language-model weights (word embeddings and decoder layers), so "
                            "cloze mode cannot score words: evaluate it with --mode classify")
    return GPTForCausalLM.from_pretrained(str(ckpt), dtype="float32", use_flash_attention=False)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- cloze
def cloze_encode(tok: Any, sentences: list[str], max_len: int, eos_ids: set[int]) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt ids per sentence, token ids per label word); sentences are cut to leave room for the rest."""

    def enc(text: str) -> list[int]:
        return [i for i in tok.convert_tokens_to_ids(tok.tokenize(text)) if i not in eos_ids]

    prefix, suffix = CLOZE_PROMPT.split("{sentence}")
    words = [enc(w) for w in CLOZE_WORDS]
    if not all(words):
        raise EvalError(f"the tokenizer encodes a label word {CLOZE_WORDS} to nothing")
    tail = enc(suffix)
    room = max_len - len(tail) - max(len(w) for w in words)
    if room < 1:
        raise EvalError(f"--max_seq_length {max_len} leaves no room for a sentence in the cloze prompt")
    prompts = []
    for s in sentences:
        ids = enc(prefix + s)[:room] or enc(" ")[:1]
        prompts.append(ids + tail)
    return prompts, words


def cloze_scores(model: Any, prompts: list[list[int]], words: list[list[int]], rows: list[int], pad_id: int) -> np.ndarray:
    """[len(rows), 2] summed log-probabilities of each label word after each row's prompt."""
    seqs = [prompts[r] + w for r in rows for w in words]
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    flat_pos, targets, owner = [], [], []
    for i, (s, w) in enumerate(zip(seqs, [w for _ in rows for w in words], strict=True)):
        ids[i, : len(s)] = s
        p = len(s) - len(w)  # first word token; predicted from position p - 1
        for j, t in enumerate(w):
            flat_pos.append(i * width + p - 1 + j)
            targets.append(t)
            owner.append(i)
    hidden = model.gpt(paddle.to_tensor(ids))
    if isinstance(hidden, (tuple, list)):
        hidden = hidden[0]
    hidden = hidden.reshape([-1, hidden.shape[-1]])
    sel = paddle.gather(hidden, paddle.to_tensor(np.asarray(flat_pos, dtype=np.int64)))
    logp = F.log_softmax(model.lm_head(sel).astype("float32"), axis=-1)
    tok_lp = paddle.take_along_axis(logp, paddle.to_tensor(np.asarray(targets, dtype=np.int64))[:, None], axis=1)
    per_seq = np.zeros(len(seqs), dtype=np.float64)
    np.add.at(per_seq, np.asarray(owner), tok_lp.numpy()[:, 0].astype(np.float64))
    return per_seq.reshape(len(rows), len(words))


# --------------------------------------------------------------------------- the worker
class Evaluator:
    def __init__(self, ns: argparse.Namespace, phases: Phases | None = None):
        self.ns = ns
        self.phases = phases or Phases()
        self.run_dir = Path(ns.run_dir).resolve()
        self.ckpt = Path(ns.checkpoint).resolve()
        self.eval_path = Path(ns.eval_path).resolve()
        self.writer: EventWriter | None = None
        self.ended = False

    def emit(self, type: str, **fields: Any) -> None:
        if self.writer is not None:
            self.writer.emit(type, **fields)

    def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.writer = EventWriter(self.run_dir / "events.jsonl")
        try:
            self.evaluate()
            self.emit("end", status="finished", reason="evaluated")
            return 0
        except Exception as e:
            traceback.print_exc()
            reason = str(e) if isinstance(e, EvalError) else f"{type(e).__name__}: {e}"
            self.emit("end", status="failed", reason=reason)
            return 1
        finally:
            self.writer.close()

    def evaluate(self) -> None:
        ns = self.ns
        if ns.batch_size < 1:
            raise EvalError(f"--batch_size must be >= 1, got {ns.batch_size}")
        check_checkpoint(self.ckpt)
        if not self.eval_path.is_file():
            raise EvalError(f"--eval_path {self.eval_path} does not exist")
        state = read_trainer_state(self.ckpt)
        step = int(state.get("global_step", 0) or 0)
        max_len = ns.max_seq_length or int(state.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)
        device = pick_device(ns.device)
        set_device(device)
        paddle.seed(0)
        tok = load_tokenizer(self.ckpt, ns.tokenizer, state)
        self.phases.mark("tokenizer")
        rows = batching.read_split(self.eval_path)  # validates: labelled, 0/1 labels (DataError says what)
        if not rows:
            raise EvalError(f"{self.eval_path} has no rows")
        labels = np.asarray([y for _, y in rows], dtype=np.int64)
        if ns.mode == "classify":
            model = load_classifier(str(self.ckpt))
        else:
            model = load_causal_lm(self.ckpt)
        model.eval()
        self.phases.mark("model")
        pad_id = pad_id_for(model)
        n_batches = math.ceil(len(rows) / ns.batch_size)
        common = {"mode": ns.mode, "checkpoint": str(self.ckpt), "eval_path": str(self.eval_path)}
        self.emit("start", world_size=1, nnodes=1, devices=[device_label(device, 0)], versions=versions(),
                  total_steps=n_batches, samples_per_epoch=len(rows), num_epochs=1, resumed_from_step=0,
                  pid=os.getpid(), max_seq_length=max_len, batch_size=ns.batch_size, **common)
        t0 = time.perf_counter()
        last = [t0]

        def on_batch(i: int, total: int, size: int) -> None:
            now = time.perf_counter()
            dt, last[0] = now - last[0], now
            if i == 1:
                self.phases.mark("first_batch")
                print(f"[gpt2-tui eval] {self.phases.line()}", flush=True)
            self.emit("step", step=i, samples_per_s=size / dt if dt > 0 else None, step_time=dt)

        if ns.mode == "classify":
            enc, _ = encode_split(tok, self.eval_path, max_len, pad_id)
            order, preds, loss_sum = predict(model, enc, list(range(len(enc))), ns.batch_size, pad_id,
                                             on_batch=on_batch)
            y_true = enc.labels[order]
            loss = loss_sum / len(order)
        else:
            eos_ids = {pad_id} | ({int(tok.eos_token_id)} if tok.eos_token_id is not None else set())
            prompts, words = cloze_encode(tok, [s for s, _ in rows], max_len, eos_ids)
            lens = np.asarray([len(p) for p in prompts])
            order = sorted(range(len(rows)), key=lambda i: (-int(lens[i]), i))
            scores = []
            with paddle.no_grad():
                for b in range(n_batches):
                    batch = order[b * ns.batch_size : (b + 1) * ns.batch_size]
                    scores.append(cloze_scores(model, prompts, words, batch, pad_id))
                    on_batch(b + 1, n_batches, len(batch))
            sc = np.concatenate(scores)
            y_true = labels[order]
            preds = sc.argmax(axis=1)
            # cross-entropy of the two-way softmax over the word scores
            lse = np.logaddexp(sc[:, 0], sc[:, 1])
            loss = float(np.mean(lse - sc[np.arange(len(sc)), y_true]))
        dt = time.perf_counter() - t0
        m = batching.classification_metrics(y_true, preds)
        self.emit("eval", step=step, loss=loss, samples_per_s=len(rows) / dt if dt > 0 else None,
                  eval_sha=file_sha256(self.eval_path), max_seq_length=max_len, **m, **common)


def main(argv: list[str] | None = None) -> int:
    from core import paddlenlp_lean

    phases = Phases()  # timed from the process's start
    phases.mark("paddle")  # the interpreter, paddle and this module
    ns = build_parser().parse_args(argv)
    # PaddleNLP without its package's eager imports (taskflow, datasets, metrics: ~2 s, unused here)
    paddlenlp_lean.load()
    phases.mark("paddlenlp")
    return Evaluator(ns, phases).run()


if __name__ == "__main__":
    sys.exit(main())
