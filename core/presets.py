"""The two starting points of a run: the offline gpt2-tiny run and the reference GPT-2 Medium recipe."""

from __future__ import annotations

from core.config import REFERENCE_MODEL, TINY_MODEL, RunConfig


def offline_preset() -> RunConfig:
    """gpt2-tiny on the bundled sample on CPU ranks: finishes in about a minute on 2 cores."""
    return RunConfig(
        model_name_or_path=TINY_MODEL,
        data_dir="sample",
        max_seq_length=64,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        learning_rate=3e-3,
        num_train_epochs=3.0,
        warmup_ratio=0.1,
        weight_decay=0.01,
        logging_steps=1,
        save_steps=500,
        eval_steps=50,  # every 50 of ~280 steps: evaluation stays under 10 % of the run (core.eval_cost)
        devices="cpu:2",
        run_name="offline-tiny",
    )


def reference_preset() -> RunConfig:
    """The reference recipe: GPT-2 Medium, SST-2, seq 128, batch 32, lr 2e-5, 3 epochs."""
    return RunConfig(
        model_name_or_path=REFERENCE_MODEL,
        data_dir="glue",
        max_seq_length=128,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=32,
        learning_rate=2e-5,
        num_train_epochs=3.0,
        logging_steps=1,
        save_steps=500,
        eval_steps=500,
        use_amp=True,
        device="gpu",  # a GPU recipe: refused with the reason where no usable GPU is, never run on the CPU
        devices="auto",
        run_name="reference-gpt2-medium",
    )


PRESETS = {"offline": offline_preset, "reference": reference_preset}
