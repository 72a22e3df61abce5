"""The training worker as a package: core/train.py is the script the launcher runs.

Layers, bottom up:
- pure rules, no paddle: ``schedule`` (steps, warm-up, micro-batches, when to evaluate and save),
  ``fastpath`` (mixed precision and kernels per device), ``elastic`` (restarts), ``state`` (what a
  checkpoint records: PaddleNLP's trainer_state.json and our gpt2tui_state.json);
- ``runtime`` (devices, versions, collectives), ``encoding`` (tokens of a split), ``evaluation``
  (predict, the dev pass), ``checkpoints`` (save, resume, load a classifier), ``reporting`` (events,
  heartbeat, the step window), ``optim`` (AdamW, schedule, AMP);
- ``setup`` (everything before step 1), ``loop`` (the Trainer) and ``main`` (arguments).

Checkpoint folder rules that the launcher and the dashboard share live in core.checkpoint_files.
This file imports nothing, so the pure rules load without paddle.
"""
