"""The training worker as a package: core/train.py is the script the launcher runs.

Layers, bottom up: ``schedule`` and ``fastpath`` (pure rules, no paddle), ``runtime`` (devices,
versions, collectives), ``encoding`` (tokens of a split), ``evaluation`` (predict, the dev pass),
``checkpoints`` (save, resume, load a classifier), ``reporting`` (events, heartbeat, the step window),
``loop`` (the Trainer) and ``main`` (arguments). This file imports nothing, so the pure rules load
without paddle (the dashboard and the launcher may use them).
"""
