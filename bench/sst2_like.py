"""SST-2-like data for benchmarks: SST-2's shape (row counts, length distribution, label balance).

The benchmarks need data whose *lengths* behave like SST-2's, because that is where length-grouped
batching saves its time: a random batch of 32 SST-2 rows is padded to its longest row, and SST-2 is
mostly short phrases with a long tail, so most of a random batch is padding.

How the distribution was chosen (facts about GLUE SST-2, sentences counted in words, SST-2 being
space-tokenised so punctuation and clitics like "'s" count as words):

- train.tsv: 67,349 rows. Most are sub-sentence phrases from the Stanford Sentiment Treebank's
  parse trees: many have 1-10 words, the median is ~7 words and the mean ~9-10 words; the longest rows
  are whole sentences past 50 words.
  Model: word count ~ lognormal with median 7 and sigma 0.75, clipped to [1, 60]; its mean is
  7 * exp(0.75**2 / 2) = 9.3 words and ~0.5 % of rows are longer than 50 words (a tail past 50 tokens).
- dev.tsv: 872 rows, all full sentences, mean ~19 words.
  Model: lognormal with median 17.5 and sigma 0.45, clipped to [3, 60]: mean 19.4 words.
- Labels: train is 55.8 % positive, dev 50.9 % positive.

The words come from assets/make_sample.py (the bundled sample's templates and word lists), so the
bundled gpt2-tiny tokenizer, whose BPE was trained on that sample, encodes them in ~1.2 tokens a word,
as GPT-2's tokenizer does for SST-2 English. Each row is a sentiment-carrying core of the row's label
(a phrase, a negation, a clause, a contrast ... from make_sample's templates) that fits the drawn length,
padded to that length with neutral words before or after it. A row is therefore always learnable, and
the label never depends on the filler, so shorter and longer rows carry the same signal.

Run: ``python bench/sst2_like.py --out DIR [--quick | --full | --n-train N]`` writes DIR/train.tsv and DIR/dev.tsv
and prints their length statistics. Deterministic: the same seed writes the same bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import statistics
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SST2_TRAIN_ROWS = 67_349
SST2_DEV_ROWS = 872
TRAIN_MEDIAN, TRAIN_SIGMA = 7.0, 0.75
DEV_MEDIAN, DEV_SIGMA = 17.5, 0.45
MAX_WORDS = 60
TRAIN_POSITIVE, DEV_POSITIVE = 0.558, 0.509


def _make_sample() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpt2_tui_make_sample", ROOT / "assets" / "make_sample.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MS = _make_sample()
# Neutral text to pad a row to its drawn length: topics, openers and plot clauses, none with sentiment.
_NEUTRAL = [*MS.TOPICS, *MS.OPENERS, *MS.NEUTRAL_CLAUSES]
_CORES = [MS.phrase, MS.negated_phrase, MS.clause, MS.negated_clause, MS.compound, MS.contrast]
_CORE_WEIGHTS = [0.40, 0.12, 0.22, 0.10, 0.08, 0.08]


def draw_length(r: random.Random, median: float, sigma: float, lo: int = 1, hi: int = MAX_WORDS) -> int:
    return max(lo, min(hi, int(round(r.lognormvariate(math.log(median), sigma)))))


def _core(r: random.Random, y: int, n: int) -> list[str]:
    """A sentiment-carrying run of at most n words with label y."""
    if n <= 1:
        return [r.choice(MS._pol(y)[0])]
    if n == 2:
        return r.choice([f"{r.choice(MS.ADVS)} {r.choice(MS._pol(y)[0])}", f"not {r.choice(MS._pol(1 - y)[0])}"]).split()
    best: list[str] | None = None
    for _ in range(12):
        words = r.choices(_CORES, _CORE_WEIGHTS)[0](r, y).split()
        if len(words) <= n and (best is None or len(words) > len(best)):
            best = words
            if len(words) >= n - 2:
                break
    return best or [r.choice(MS._pol(y)[0])]


def _filler(r: random.Random, n: int) -> list[str]:
    words: list[str] = []
    while len(words) < n:
        words += r.choice(_NEUTRAL).split() + [","]
    return words[:n]


def make_row(r: random.Random, y: int, n_words: int) -> str:
    core = _core(r, y, n_words)
    fill = _filler(r, n_words - len(core))
    words = fill + core if r.random() < 0.5 else core + fill
    return " ".join(words)


def generate(n: int, r: random.Random, median: float, sigma: float, positive: float, lo: int) -> list[tuple[str, int]]:
    rows = []
    for _ in range(n):
        y = 1 if r.random() < positive else 0
        rows.append((make_row(r, y, draw_length(r, median, sigma, lo)), y))
    return rows


def write_split(path: Path, rows: list[tuple[str, int]]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("sentence\tlabel\n")
        fh.writelines(f"{s}\t{y}\n" for s, y in rows)


def write_sst2_like(out: str | Path, n_train: int = SST2_TRAIN_ROWS, n_dev: int = SST2_DEV_ROWS,
                    seed: int = 2024) -> Path:
    """Write ``out/train.tsv`` and ``out/dev.tsv``; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r = random.Random(seed)
    write_split(out / "train.tsv", generate(n_train, r, TRAIN_MEDIAN, TRAIN_SIGMA, TRAIN_POSITIVE, 1))
    write_split(out / "dev.tsv", generate(n_dev, r, DEV_MEDIAN, DEV_SIGMA, DEV_POSITIVE, 3))
    return out


def word_stats(path: str | Path) -> dict[str, float]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()[1:]
    lens = sorted(len(line.rsplit("\t", 1)[0].split()) for line in lines)
    labels = [int(line.rsplit("\t", 1)[1]) for line in lines]
    return {"rows": len(lens), "mean_words": round(statistics.fmean(lens), 2), "median_words": statistics.median(lens),
            "p90_words": lens[int(0.9 * (len(lens) - 1))], "max_words": lens[-1],
            "share_1_to_10": round(sum(1 <= n <= 10 for n in lens) / len(lens), 3),
            "over_50": sum(n > 50 for n in lens), "positive": round(sum(labels) / len(labels), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="folder for train.tsv and dev.tsv")
    ap.add_argument("--full", action="store_true", help=f"write SST-2's {SST2_TRAIN_ROWS:,} train rows")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2,000 train rows")
    ap.add_argument("--n-train", type=int, default=8000, help="train rows when not --full (default 8000)")
    ap.add_argument("--n-dev", type=int, default=SST2_DEV_ROWS)
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args(argv)
    n_train = SST2_TRAIN_ROWS if a.full else 2000 if a.quick else a.n_train
    out = write_sst2_like(a.out, n_train, a.n_dev, a.seed)
    for name in ("train", "dev"):
        print(name, word_stats(out / f"{name}.tsv"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
