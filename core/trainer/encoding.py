"""Token ids of a labelled split, shared with core.evaluate so both tokenise, truncate and pad alike."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import batching

TRAIN_FILE, DEV_FILE = "train.tsv", "dev.tsv"


def pad_id_for(model: Any) -> int:
    """The id GPTForSequenceClassification treats as padding (its own rule: ``eos_token_id or 0``)."""
    return int(getattr(model.config, "eos_token_id", None) or 0)


def tokenizer_files(tok: Any) -> list[str]:
    files = [getattr(tok, "_vocab_file", None), getattr(tok, "_merges_file", None)]
    return [str(f) for f in files if f and os.path.isfile(f)]


def encode_split(tok: Any, path: str | os.PathLike[str], max_len: int, pad_id: int,
                 write_cache: bool = True) -> tuple[batching.Encoded, bool]:
    """Token ids of a labelled TSV, from the cache when possible; (encoded, came_from_cache)."""
    eos_ids = {pad_id} | ({int(tok.eos_token_id)} if tok.eos_token_id is not None else set())
    files = tokenizer_files(tok)
    extra = f"pad={pad_id};eos={sorted(eos_ids)};cls={type(tok).__name__}"
    if not files:  # a tokenizer without vocab files on disk: key on its vocabulary instead
        extra += json.dumps(sorted(tok.get_vocab().items()))
    key = batching.cache_key(files, path, max_len, extra)
    enc = batching.cache_load(key)
    if enc is not None:
        return enc, True
    rows = batching.read_split(path)

    def encode(text: str) -> list[int]:
        return tok.convert_tokens_to_ids(tok.tokenize(text))

    enc = batching.encode_texts(encode, (s for s, _ in rows), (y for _, y in rows), max_len, eos_ids)
    if write_cache:
        batching.cache_store(key, enc)
    return enc, False


def load_splits(tok: Any, data_dir: Path, max_len: int, pad_id: int, cache_writer: bool,
                barrier: Callable[[], None]) -> tuple[batching.Encoded, batching.Encoded, str]:
    """(train, dev, a note saying where the tokens came from).

    Rank 0 of each node (``cache_writer``) tokenises and fills the cache; the others wait, then read it
    (or, if the cache could not be written, tokenise themselves)."""
    if cache_writer:
        train, hit_tr = encode_split(tok, data_dir / TRAIN_FILE, max_len, pad_id)
        dev, hit_dv = encode_split(tok, data_dir / DEV_FILE, max_len, pad_id)
    barrier()
    if not cache_writer:
        train, hit_tr = encode_split(tok, data_dir / TRAIN_FILE, max_len, pad_id, write_cache=False)
        dev, hit_dv = encode_split(tok, data_dir / DEV_FILE, max_len, pad_id, write_cache=False)
    note = (f"tokens: train {'from cache' if hit_tr else 'tokenised'}, dev "
            f"{'from cache' if hit_dv else 'tokenised'} (cache: {batching.default_cache_dir()})")
    if len(train) == 0 or len(dev) == 0:
        raise ValueError(f"{data_dir}: train.tsv and dev.tsv must each have at least one row")
    return train, dev, note
