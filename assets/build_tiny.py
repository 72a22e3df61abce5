"""Build assets/gpt2-tiny: a GPT-2-architecture model small enough to fine-tune on 2 CPU cores in a minute.

Offline and deterministic:
1. train a GPT-2-style byte-level BPE (bytes_to_unicode symbols, "Ġ" marks a leading space) on the
   sample's train sentences: the 256 byte symbols, then merges until TARGET_VOCAB (or until no pair
   occurs MIN_PAIR_COUNT times), then <|endoftext|> as the last id (EOS = pad, like GPT-2);
2. write vocab.json and merges.txt. paddlenlp's GPTTokenizer reads merges with
   ``f.read().split("\\n")[1:-1]``: the "#version: 0.2" header and the trailing newline are required,
   without them the first or last merge is silently dropped;
3. build GPTForCausalLM (2 layers, width 64) from a seeded random init and ``save_pretrained`` it with
   the tokenizer. The LM head is tied to the word embeddings, so GPTForSequenceClassification and
   GPTForCausalLM both load from the folder (the classifier's ``score`` layer is new, as with any
   pre-trained checkpoint).

Run:  python assets/build_tiny.py   (needs paddle; writes assets/gpt2-tiny, 1.0 MB: 182 k parameters,
plus a second copy of the tied 1024 x 64 embedding that save_pretrained stores as lm_head.weight;
dropping it saves 0.26 MB but makes GPTForCausalLM warn that lm_head is "newly initialized")
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import tempfile
from pathlib import Path

import regex

ASSETS = Path(__file__).resolve().parent
SAMPLE_TRAIN = ASSETS / "sst2-sample" / "train.tsv"
OUT = ASSETS / "gpt2-tiny"
EOS = "<|endoftext|>"
# ~1000 ids: every word of the sample becomes one or two tokens, and the embedding table (1000 x 64 x 4 B
# = 256 KB) stays the largest tensor. The real GPT-2 vocabulary (50257) would make the "tiny" model 13 MB.
TARGET_VOCAB = 1024
MIN_PAIR_COUNT = 2  # a merge seen once teaches nothing a byte pair would not
SEED = 1234
# The same pre-tokenisation as paddlenlp's GPTTokenizer (transformers/gpt/tokenizer.py).
PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
MODEL = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=256,
    # 256 covers the sample's longest row (~90 tokens) and RunConfig's default --max_seq_length 128.
    max_position_embeddings=256,
    type_vocab_size=1,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    initializer_range=0.02,
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (same order as GPT-2's first 256 ids)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def read_sentences(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.rsplit("\t", 1)[0] for line in lines if line]


def train_bpe(texts: list[str], target_vocab: int = TARGET_VOCAB) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Classic BPE over pre-tokenised words: merge the most frequent adjacent pair until the budget."""
    b2u = bytes_to_unicode()
    words: collections.Counter[tuple[str, ...]] = collections.Counter()
    for t in texts:
        for w in PAT.findall(t):
            words[tuple(b2u[b] for b in w.encode("utf-8"))] += 1
    vocab = {c: i for i, c in enumerate(b2u.values())}
    merges: list[tuple[str, str]] = []
    while len(vocab) < target_vocab - 1:  # -1: room for EOS
        pairs: collections.Counter[tuple[str, str]] = collections.Counter()
        for w, n in words.items():
            for p in zip(w, w[1:], strict=False):
                pairs[p] += n
        if not pairs:
            break
        # Ties broken by the pair itself, so the result does not depend on dict order.
        best, count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if count < MIN_PAIR_COUNT:
            break
        merged = best[0] + best[1]
        merges.append(best)
        vocab.setdefault(merged, len(vocab))
        new_words: collections.Counter[tuple[str, ...]] = collections.Counter()
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] += n
        words = new_words
    vocab[EOS] = len(vocab)
    return vocab, merges


def write_tokenizer_files(vocab: dict[str, int], merges: list[tuple[str, str]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    with open(folder / "merges.txt", "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)


def build(out: Path = OUT, seed: int = SEED) -> dict[str, int]:
    import paddle
    from paddlenlp.transformers import GPTConfig, GPTForCausalLM, GPTTokenizer

    vocab, merges = train_bpe(read_sentences(SAMPLE_TRAIN))
    with tempfile.TemporaryDirectory() as tmp:
        write_tokenizer_files(vocab, merges, Path(tmp))
        tok = GPTTokenizer(
            vocab_file=str(Path(tmp) / "vocab.json"),
            merges_file=str(Path(tmp) / "merges.txt"),
            model_max_length=MODEL["max_position_embeddings"],
        )
        eos = vocab[EOS]
        assert tok.eos_token_id == eos and tok.pad_token_id == eos, (tok.eos_token_id, tok.pad_token_id)
        paddle.seed(seed)
        # pad = bos = eos, as in GPT-2; eol is the newline byte's symbol "Ċ" (GPT-2's 198).
        config = GPTConfig(vocab_size=len(vocab), eos_token_id=eos, pad_token_id=eos, bos_token_id=eos,
                           eol_token_id=vocab[bytes_to_unicode()[10]], **MODEL)
        model = GPTForCausalLM(config)
        model.eval()
        if out.exists():
            shutil.rmtree(out)
        model.save_pretrained(str(out))
        tok.save_pretrained(str(out))
    return {"vocab_size": len(vocab), "merges": len(merges), "eos_token_id": eos,
            "parameters": sum(int(p.numel()) for p in model.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    a = ap.parse_args()
    info = build(a.out, a.seed)
    size = sum(p.stat().st_size for p in a.out.iterdir())
    print(f"{a.out}: {info}, {size / 1e6:.2f} MB: {sorted(p.name for p in a.out.iterdir())}")


if __name__ == "__main__":
    main()
