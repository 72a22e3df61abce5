"""Batches (random draws sorted by length, each step cut into length-close micro-batches) and the on-disk
tokenisation cache (pure python + numpy: no paddle).

Shared by core.train and core.evaluate so that both tokenise, truncate and pad identically: the
evaluator must reproduce the training run's own dev accuracy exactly.

Encoding rules (GPTForSequenceClassification pools the last token that is not EOS):
- text is byte-level BPE encoded with no special tokens added; any EOS id that the text produced
  (a literal ``<|endoftext|>`` in a sentence) is dropped, so EOS only ever appears as padding;
- truncation keeps the first ``max_seq_length`` tokens (run_glue truncates from the right too);
- a sentence that encodes to nothing gets one token (the encoding of a space) so that the pooled
  position is never -1;
- a step's micro-batches are padded on the right with EOS to their own longest row.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.epoch_steps import steps_per_epoch as steps_per_epoch  # counts the batches built here

# Bump when the encoding rules above change: old cache entries then stop matching.
ENCODING_VERSION = "gpt2-tui-enc-1"
# The sort window, in global batches: 64 shuffled rows are sorted by length and cut into 2 global batches,
# so a batch is a random draw from the shorter or the longer half, and ``length_micro_batches`` saves the
# padding inside it. Measured (bench/time_to_accuracy.py, gpt2-tiny, SST-2-like, 500 steps, 5 seeds; one
# call a step): a window of 50 batches padded 7 %, but its length-uniform batches learned slower per step
# (0.84 dev accuracy at a median step 475, in 3 of 5 seeds; final accuracy 2.5 points under the
# reference); a window of 2 learned like random batches (step 350, 5 of 5; final -1.0 +- 2.8 points),
# windows of 8 like 50. docs/BENCHMARKS.md section 10 has the curve.
CHUNK_BATCHES = 2
# What one more forward+backward call costs, in padded tokens' worth of compute: the split adds a call only
# where it saves more padding than this. Measured on gpt2-tiny, one CPU thread (bench/train_throughput.py
# arms ours-costN, per CPU-second): a step costs ~8.7 ms + ~4.5 ms a call + ~0.068 ms a padded token,
# so a call is worth ~67 tokens. On SST-2-like data this pads ~22 % at ~2.2 calls a step (one call: 72 %).
CALL_COST_TOKENS = 64


# --------------------------------------------------------------------------- sampler
def global_batches(
    lengths: Sequence[int] | np.ndarray,
    global_batch: int,
    world: int,
    seed: int,
    epoch: int,
    chunk_batches: int = CHUNK_BATCHES,
) -> list[list[int]]:
    """One epoch's global batches (lists of row indices), each sorted by length (longest first).

    Shuffle all rows (seeded by seed and epoch), cut the order into chunks of ``chunk_batches`` global
    batches, sort each chunk by length, cut it into global batches and shuffle the order of the batches.
    A wide window groups rows of close length into the same batch (little padding in one call, but slower
    learning: see CHUNK_BATCHES); a window of 1 makes every batch a random draw, sorted inside.
    Every row appears exactly once. A last batch with fewer than ``world`` rows joins the one before
    it, so that no rank ever gets an empty slice.
    """
    n = len(lengths)
    if global_batch < 1 or world < 1:
        raise ValueError(f"bad sampler arguments: global_batch={global_batch} world={world}")
    if n < world:
        raise ValueError(f"{n} training rows cannot be shared by {world} ranks")
    global_batch = max(global_batch, world)
    lens = np.asarray(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    chunk = max(1, chunk_batches) * global_batch
    batches: list[np.ndarray] = []
    for start in range(0, n, chunk):
        part = order[start : start + chunk]
        # stable sort: ties keep the shuffled order, so the result depends only on (seed, epoch)
        part = part[np.argsort(-lens[part], kind="stable")]
        batches.extend(part[i : i + global_batch] for i in range(0, len(part), global_batch))
    if len(batches) > 1 and len(batches[-1]) < world:
        batches[-2] = np.concatenate([batches[-2], batches[-1]])
        batches.pop()
    perm = rng.permutation(len(batches))
    return [batches[i].tolist() for i in perm]


def length_micro_batches(
    lengths: Sequence[int] | np.ndarray, rows: Sequence[int], max_rows: int, call_cost: float | None = None,
    world: int = 1, rank: int = 0,
) -> list[list[int]]:
    """A step's global batch cut into micro-batches of rows of close length, each padded on its own; this
    rank's share of each.

    The rows are sorted by length (longest first, ties in the given order) and cut into contiguous groups
    (at multiples of ``world``, so every rank gets a row of every group and all ranks make the same number
    of calls: DataParallel ranks that make different numbers of calls hang in gloo) of at most ``max_rows``
    rows a rank, choosing the cut that minimises padded tokens a rank plus ``call_cost`` (default
    CALL_COST_TOKENS) per group: exact, by dynamic programming (O(n^2) for n rows, ~0.2 ms for 32). Rank r
    takes rows r, r + world, ... of each group: of a length-sorted global batch, that is ``rows[r::world]``.
    A step's loss is the mean over its rows however they are cut (core.trainer.loop weights each
    micro-batch by its share), so the cut changes the cost of a step, not what it learns.
    """
    rows = list(rows)
    n = len(rows)
    if n == 0:
        return []
    world = max(1, min(world, n))
    cost = CALL_COST_TOKENS if call_cost is None else call_cost
    max_global = max(1, max_rows) * world
    lens = np.asarray(lengths)[rows]
    order = np.argsort(-lens, kind="stable")
    ls = lens[order].tolist()
    cuts = sorted({*range(0, n, world), n})  # where a group may start or end
    best = {0: 0.0}  # best[j]: cost of the first j rows
    back: dict[int, int] = {}
    for j in cuts[1:]:
        # a group too big for max_rows beats one that leaves a rank without rows (only a short epoch tail
        # with a 1-row micro-batch can need it)
        options = ([i for i in cuts if i < j and world <= j - i <= max_global]
                   or [max([i for i in cuts if i < j and j - i >= world] or [i for i in cuts if i < j])])
        for i in options:  # group rows i..j-1, padded to ls[i] (the longest), ceil((j-i)/world) rows a rank
            if i not in best:
                continue
            v = best[i] + cost + -(-(j - i) // world) * ls[i]
            if j not in best or v < best[j]:
                best[j], back[j] = v, i
    groups: list[list[int]] = []
    j = n
    while j > 0:
        i = back[j]
        groups.append([rows[k] for k in order[i + rank : j : world]])
        j = i
    return groups[::-1]


def length_grouped_batches(
    lengths: Sequence[int] | np.ndarray,
    global_batch: int,
    world: int,
    rank: int,
    seed: int,
    epoch: int,
    chunk_batches: int = CHUNK_BATCHES,
) -> list[list[int]]:
    """This rank's batches for one epoch: rows ``gb[rank::world]`` of every global batch ``gb``.

    Interleaving a length-sorted global batch hands every rank rows of similar length. Every rank gets
    the same number of batches (so all run the same number of steps), none of them empty.
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in 0..{world - 1}")
    return [gb[rank::world] for gb in global_batches(lengths, global_batch, world, seed, epoch, chunk_batches)]


# --------------------------------------------------------------------------- encoding
@dataclass
class Encoded:
    """Token ids of a split, flat: row i is ``ids[offsets[i]:offsets[i + 1]]``."""

    ids: np.ndarray  # int32
    offsets: np.ndarray  # int64, len n + 1
    labels: np.ndarray  # int64 (-1 when unlabelled)
    truncated: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, ids=self.ids, offsets=self.offsets, labels=self.labels, truncated=np.int64(self.truncated))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Encoded:
        with np.load(io.BytesIO(data)) as z:
            return cls(z["ids"], z["offsets"], z["labels"], int(z["truncated"]))


def encode_texts(
    encode: Callable[[str], list[int]], texts: Iterable[str], labels: Iterable[int], max_len: int, eos_ids: set[int]
) -> Encoded:
    """Apply the encoding rules of the module docstring; ``encode`` maps text to BPE ids."""
    flat: list[int] = []
    offsets = [0]
    truncated = 0
    fallback: list[int] | None = None
    for text in texts:
        ids = [i for i in encode(text) if i not in eos_ids]
        if not ids:
            if fallback is None:
                fallback = [i for i in encode(" ") if i not in eos_ids][:1] or [0]
            ids = fallback
        if len(ids) > max_len:
            truncated += 1
            ids = ids[:max_len]
        flat.extend(ids)
        offsets.append(len(flat))
    return Encoded(
        np.asarray(flat, dtype=np.int32),
        np.asarray(offsets, dtype=np.int64),
        np.asarray(list(labels), dtype=np.int64),
        truncated,
    )


def pad_batch(enc: Encoded, rows: Sequence[int], pad_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input_ids [b, longest] int64 right-padded with pad_id, labels [b], lengths [b])."""
    lens = enc.lengths[list(rows)]
    out = np.full((len(rows), int(lens.max())), pad_id, dtype=np.int64)
    for j, i in enumerate(rows):
        r = enc.row(i)
        out[j, : len(r)] = r
    return out, enc.labels[list(rows)], lens


def eval_batches(enc: Encoded, rows: Sequence[int], batch_size: int) -> list[list[int]]:
    """Deterministic evaluation batches: rows sorted by length (longest first), then cut."""
    rows = list(rows)
    lens = enc.lengths
    rows.sort(key=lambda i: (-int(lens[i]), i))
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def classification_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """accuracy, n, confusion [[tn, fp], [fn, tp]] (rows = true label), precision/recall/f1 per class."""
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    conf = [[int(((t == a) & (p == b)).sum()) for b in (0, 1)] for a in (0, 1)]
    precision, recall, f1 = {}, {}, {}
    for c in (0, 1):
        tp, predicted, actual = conf[c][c], conf[0][c] + conf[1][c], sum(conf[c])
        pr = tp / predicted if predicted else 0.0
        rc = tp / actual if actual else 0.0
        precision[str(c)], recall[str(c)] = pr, rc
        f1[str(c)] = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
    n = len(t)
    return {"accuracy": float((t == p).sum() / n) if n else 0.0, "n": n, "confusion": conf,
            "precision": precision, "recall": recall, "f1": f1}


# --------------------------------------------------------------------------- reading
def read_split(path: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """(sentence, label) rows of a labelled SST-2 TSV, validated by core.data when it is there."""
    try:
        from core.data import read_split as _read
    except ImportError:  # core.data is optional for this module: a plain reader
        return _read_plain(path)
    return _read(str(path), labelled=True)


def _read_plain(path: str | os.PathLike[str]) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header or "sentence" not in header or "label" not in header:
            raise ValueError(f"{path}: expected a 'sentence<TAB>label' header, got {header!r}")
        si, li = header.index("sentence"), header.index("label")
        for lineno, rec in enumerate(reader, start=2):
            if not rec:
                continue
            try:
                rows.append((rec[si], int(rec[li])))
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{lineno}: bad row {rec!r}") from None
    return rows


# --------------------------------------------------------------------------- cache
def default_cache_dir() -> Path:
    env = os.environ.get("GPT2_TUI_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "gpt2-tui" / "tokens"


def cache_key(tokenizer_files: Sequence[str | os.PathLike[str]], data_file: str | os.PathLike[str],
              max_len: int, extra: str = "") -> str:
    """sha256 over the tokenizer files' bytes, the data file's bytes, max_len and the encoding version."""
    h = hashlib.sha256()
    h.update(f"{ENCODING_VERSION}\0{max_len}\0{extra}\0".encode())
    for p in [*tokenizer_files, data_file]:
        h.update(b"\0file\0")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def cache_load(key: str, cache_dir: Path | None = None) -> Encoded | None:
    path = (cache_dir or default_cache_dir()) / f"{key}.npz"
    try:
        return Encoded.from_bytes(path.read_bytes())
    except (OSError, ValueError, KeyError, EOFError):
        return None  # missing, or torn by someone else's crash: rebuild


def cache_store(key: str, enc: Encoded, cache_dir: Path | None = None) -> Path | None:
    """Write atomically (temp file + rename), so racing ranks never read half a file. None on failure."""
    d = cache_dir or default_cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=d)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(enc.to_bytes())
            os.replace(tmp, d / f"{key}.npz")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return None  # a read-only or full cache dir only costs the next run a re-tokenisation
    return d / f"{key}.npz"

