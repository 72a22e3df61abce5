"""A real PaddleNLP ``Trainer`` run on the bundled tiny model: the fixture for the import and log-parser tests.

``python tests/paddlenlp_run.py OUTPUT_DIR [--rows N] [--max_steps N]`` fine-tunes assets/gpt2-tiny for a
few steps on the first rows of assets/sst2-sample with PaddleNLP's own Trainer, logging every step,
saving and evaluating every 2 steps, VisualDL on (logs under OUTPUT_DIR/vdl). Its stdout/stderr are the
Trainer's real log lines. Run as a subprocess: paddle stays out of the test process.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "assets" / "gpt2-tiny"
DATA = ROOT / "assets" / "sst2-sample"


def rows(path: Path, n: int) -> list[tuple[str, int]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r["sentence"], int(r["label"])) for _, r in zip(range(n), reader, strict=False)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("output_dir")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--max_steps", type=int, default=4)
    ap.add_argument("--tqdm", action="store_true", help="keep the Trainer's progress bar (off: cleaner logs)")
    a = ap.parse_args(argv)
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)

    import paddle
    from paddlenlp.trainer import Trainer, TrainingArguments
    from paddlenlp.trainer.integrations import VisualDLCallback
    from paddlenlp.transformers import GPTForSequenceClassification, GPTTokenizer

    paddle.set_device("cpu")
    tok = GPTTokenizer.from_pretrained(str(MODEL))
    model = GPTForSequenceClassification.from_pretrained(str(MODEL), num_classes=2)
    eos = int(model.config.eos_token_id or 0)

    class Rows(paddle.io.Dataset):
        def __init__(self, data: list[tuple[str, int]]):
            # Right-padded with EOS to a fixed 32 tokens: GPTForSequenceClassification reads the last non-EOS.
            self.items = []
            for text, label in data:
                ids = tok(text)["input_ids"][:32]
                # Python lists: the Trainer's DataCollatorWithPadding (it has a tokenizer) refuses numpy arrays,
                # and an error in paddle's loader thread hangs the loop instead of raising.
                self.items.append({"input_ids": ids + [eos] * (32 - len(ids)), "labels": label})

        def __getitem__(self, i):  # type: ignore[no-untyped-def]
            return self.items[i]

        def __len__(self) -> int:
            return len(self.items)

    class VisualDL(VisualDLCallback):
        # PaddleNLP's own callback writes every logged scalar (its on_log is untouched); only its add_hparams
        # at train begin is skipped: with the installed protobuf it raises "Expected an int, got a boolean".
        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.is_world_process_zero and self.vdl_writer is None:
                self._init_summary_writer(args)

    def accuracy(p):  # type: ignore[no-untyped-def]
        return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}

    args = TrainingArguments(
        output_dir=a.output_dir, max_steps=a.max_steps, logging_steps=1, save_steps=2,
        evaluation_strategy="steps", eval_steps=2, per_device_train_batch_size=4, per_device_eval_batch_size=8,
        learning_rate=5e-4, seed=7, report_to=[], logging_dir=str(Path(a.output_dir) / "vdl"),
        disable_tqdm=not a.tqdm, device="cpu", do_train=True, do_eval=True, dataloader_num_workers=0,
    )
    # With the tokenizer, every checkpoint is a loadable model folder (as run_glue's are).
    trainer = Trainer(model=model, args=args, train_dataset=Rows(rows(DATA / "train.tsv", a.rows)),
                      eval_dataset=Rows(rows(DATA / "dev.tsv", a.rows)), compute_metrics=accuracy,
                      callbacks=[VisualDL()], tokenizer=tok)
    result = trainer.train()
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    metrics = trainer.evaluate()
    trainer.log_metrics("eval", metrics)
    trainer.save_metrics("eval", metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
