"""Model name -> local PaddleNLP model folder, downloading GPT-2 weights when they are missing.

No paddle import (the UI process calls this for its preflight checklist; paddle costs ~2.5 s to import).

Names:
- ``gpt2-tiny``: the bundled offline model in assets/gpt2-tiny (built by assets/build_tiny.py).
- ``gpt2-en`` (124 M) and ``gpt2-medium-en`` (355 M): PaddleNLP's converted OpenAI GPT-2 weights on
  bj.bcebos.com. paddlenlp 2.8.1 still lists their weight URLs (GPT_PRETRAINED_RESOURCE_FILES_MAP) and
  tokenizer URLs, but dropped their architectures from GPT_PRETRAINED_INIT_CONFIGURATION, so
  ``from_pretrained("gpt2-medium-en")`` falls through to a community download and fails. We fetch the
  three files ourselves and write the config.json that PaddleNLP 2.4's configuration.py had, so the
  folder loads with ``from_pretrained(folder)``, offline from then on.
- any local folder holding a config, weights and GPT tokenizer files (e.g. a run's checkpoint).

The cache is PaddleNLP's own: ``$PPNLP_HOME/models/<name>/`` (PPNLP_HOME defaults to ~/.paddlenlp).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from core.config import ASSETS

TINY = "gpt2-tiny"
# Where PaddleNLP publishes the GPT files (paddlenlp/transformers/gpt/configuration.py, tokenizer.py).
DEFAULT_BASE_URL = "https://bj.bcebos.com/paddlenlp/models/transformers/gpt"
BASE_URL_ENV = "GPT2_TUI_MODEL_BASE_URL"  # tests and mirrors point this elsewhere

ProgressFn = Callable[[int, "int | None"], None]

_GPT2_COMMON = {
    "model_type": "gpt",
    "architectures": ["GPTForCausalLM"],
    "hidden_activation": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 1024,
    "type_vocab_size": 1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-5,
    # 50256 = <|endoftext|>. pad = eos: GPTForSequenceClassification pools the last non-EOS token, so
    # right padding with EOS is what makes it pick the last real token.
    "eos_token_id": 50256,
    "bos_token_id": 50256,
    "pad_token_id": 50256,
    "eol_token_id": 198,
}
# Architectures from PaddleNLP's GPT_PRETRAINED_INIT_CONFIGURATION before 2.8 (same numbers as OpenAI's
# GPT-2). gpt2-medium-en's embedding is padded to 50304 rows (a multiple of 64); gpt2-en keeps 50257.
CONFIGS: dict[str, dict[str, object]] = {
    "gpt2-en": {**_GPT2_COMMON, "vocab_size": 50257, "hidden_size": 768, "num_hidden_layers": 12,
                "num_attention_heads": 12, "intermediate_size": 3072},
    "gpt2-medium-en": {**_GPT2_COMMON, "vocab_size": 50304, "hidden_size": 1024, "num_hidden_layers": 24,
                       "num_attention_heads": 16, "intermediate_size": 4096},
}
# local file name -> remote file name under the base URL. Small files first: a network problem shows
# up before the big download starts, and a failure in the big one leaves the small ones for next time.
REMOTE_FILES: dict[str, dict[str, str]] = {
    name: {"vocab.json": "gpt-en-vocab.json", "merges.txt": "gpt-en-merges.txt",
           "model_state.pdparams": f"{name}.pdparams"}
    for name in CONFIGS
}
APPROX_SIZE = {"gpt2-en": "0.5 GB", "gpt2-medium-en": "1.4 GB"}
TOKENIZER_CONFIG = {
    "tokenizer_class": "GPTTokenizer",
    "model_max_length": 1024,
    "pad_token": "<|endoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "bos_token": "<|endoftext|>",
}
CONFIG_FILES = ("config.json", "model_config.json")  # either; model_config.json is PaddleNLP's legacy name
WEIGHT_FILES = ("model_state.pdparams", "model.safetensors", "model_state.pdparams.index.json",
                "model.safetensors.index.json")
TOKENIZER_FILES = ("vocab.json", "merges.txt")  # what GPTTokenizer.from_pretrained(folder) reads
# Seconds for the whole of a model download; a 1.4 GB file at 1 MB/s takes ~25 min. Stalls are caught
# sooner by the per-read socket timeout.
DEFAULT_DEADLINE = 3 * 3600.0


class ModelError(ValueError):
    """A model that cannot be found or fetched; ``str()`` is one paragraph: what is wrong, then the fix."""

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem.rstrip(". ")
        self.fix = fix if not fix or fix.endswith((".", "?", "!")) else fix + "."
        super().__init__(f"{self.problem}. {self.fix}".strip())


class DownloadError(OSError):
    """A download failed; the message says why in a few words (callers add the URL and the fix)."""


# ---------------------------------------------------------------------------------------------- names
def known_models() -> list[str]:
    return [TINY, *CONFIGS]


def paddlenlp_home() -> Path:
    """PaddleNLP's home: $PPNLP_HOME, else ~/.paddlenlp (read at call time so tests can set PPNLP_HOME)."""
    return Path(os.environ.get("PPNLP_HOME") or os.path.join(os.path.expanduser("~"), ".paddlenlp"))


def cache_root() -> Path:
    """PaddleNLP's MODEL_HOME: $PPNLP_HOME/models."""
    return paddlenlp_home() / "models"


def cache_dir(name: str) -> Path:
    return cache_root() / name


def base_url() -> str:
    return (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def missing_files(folder: str | os.PathLike[str]) -> list[str]:
    """What a folder lacks to load with from_pretrained: a config, weights, tokenizer files."""
    p = Path(folder)
    missing: list[str] = []
    if not any((p / f).is_file() for f in CONFIG_FILES):
        missing.append(" or ".join(CONFIG_FILES))
    if not any((p / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES[:2]))
    missing += [f for f in TOKENIZER_FILES if not (p / f).is_file()]
    return missing


def _local_path(name: str) -> Path | None:
    """`name` as a folder path, when it looks like one (a name from known_models() never does)."""
    if name in known_models():
        return None
    p = Path(name).expanduser()
    if p.exists() or os.sep in name or name.startswith((".", "~")) or (os.altsep and os.altsep in name):
        return p
    return None


def is_available_locally(name: str) -> bool:
    """True when resolve_model(name) would not need the network."""
    name = name.strip()
    if name == TINY:
        return not missing_files(ASSETS / TINY)
    if name in CONFIGS:
        return not missing_files(cache_dir(name))
    p = _local_path(name)
    return p is not None and p.is_dir() and not missing_files(p)


def resolve_model(name: str, progress: ProgressFn | None = None, timeout: float = 30.0,
                  deadline: float = DEFAULT_DEADLINE) -> Path:
    """The local folder for `name`, downloading gpt2-en / gpt2-medium-en into the cache when missing.

    `progress(done_bytes, total_bytes_or_None)` is called on the caller's thread, about every 0.1 s,
    once per file (the weights are > 99 % of the bytes); raising from it cancels the download.
    `timeout` bounds the wait for an answer and each read; `deadline` the whole download.
    """
    name = name.strip()
    if not name:
        raise ModelError("No model given", f"Pass --model_name_or_path: one of {', '.join(known_models())}, "
                         "or a local PaddleNLP model folder.")
    if name == TINY:
        folder = ASSETS / TINY
        if missing := missing_files(folder):
            raise ModelError(f"The bundled model {folder} is incomplete (missing {', '.join(missing)})",
                             "Rebuild it with: python assets/build_tiny.py")
        return folder
    if name in CONFIGS:
        folder = cache_dir(name)
        if missing_files(folder):
            _download_model(name, folder, progress, timeout, deadline)
        return folder
    p = _local_path(name)
    if p is None:
        close = difflib.get_close_matches(name, known_models(), n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(f"Unknown model {name!r}",
                         f"Known names: {', '.join(known_models())}; or pass the path of a local PaddleNLP "
                         f"model folder (config.json, model_state.pdparams, vocab.json, merges.txt).{hint}")
    if not p.exists():
        raise ModelError(f"Model folder {p} does not exist",
                         f"Check the path, or use one of: {', '.join(known_models())}")
    if not p.is_dir():
        raise ModelError(f"{p} is a file, not a model folder",
                         "Pass the folder that holds config.json, model_state.pdparams and the tokenizer files")
    if missing := missing_files(p):
        raise ModelError(f"Model folder {p} is missing {', '.join(missing)}",
                         "A PaddleNLP GPT folder needs a config, weights and vocab.json + merges.txt; "
                         "save one with model.save_pretrained(dir) and tokenizer.save_pretrained(dir)")
    return p


# ------------------------------------------------------------------------------------------ download
def _download_model(name: str, folder: Path, progress: ProgressFn | None, timeout: float,
                    deadline: float) -> None:
    try:
        created = make_dirs(folder)
    except OSError as e:
        raise ModelError(f"Cannot create the model cache {folder}: {e.strerror or e}",
                         "Set PPNLP_HOME to a writable folder, or pass --model_name_or_path /path/to/dir") from e
    base = base_url()
    start = time.monotonic()
    url = base
    try:
        for local, remote in REMOTE_FILES[name].items():
            dest = folder / local
            if dest.is_file():
                continue  # complete: every file is renamed into place only when whole
            legacy = folder / remote  # what older PaddleNLP versions cached under the URL's own name
            if legacy.is_file():
                _link_or_copy(legacy, dest)
                continue
            url = f"{base}/{remote}"
            left = deadline - (time.monotonic() - start)
            download_file(url, dest, progress=progress, timeout=timeout, deadline=max(left, 1.0))
        # Written last, so a folder with a config always has its weights.
        _write_json(folder / "tokenizer_config.json", TOKENIZER_CONFIG)
        _write_json(folder / "config.json", CONFIGS[name])
    except DownloadError as e:
        remove_empty_dirs(created)
        raise ModelError(
            f"Could not download {name} ({APPROX_SIZE[name]}) from {url}: {e}",
            f"Check the network (or set {BASE_URL_ENV} to a mirror), or put the files in {folder} yourself, "
            f"or pass a local folder with --model_name_or_path /path/to/dir; gpt2-tiny works offline",
        ) from e
    except OSError as e:
        remove_empty_dirs(created)
        raise ModelError(f"Could not write {name} into {folder}: {e.strerror or e}",
                         "Free some disk space or set PPNLP_HOME to a writable folder") from e
    except BaseException:
        remove_empty_dirs(created)
        raise


def download_file(url: str, dest: str | os.PathLike[str], *, progress: ProgressFn | None = None,
                  timeout: float = 30.0, deadline: float | None = None) -> Path:
    """Stream `url` into `dest` atomically: a temp file in dest's folder, renamed when complete.

    The transfer runs in a daemon thread so that nothing can block the caller past its bounds: no answer
    (DNS included, which socket timeouts do not cover) within `timeout`, each read within `timeout`,
    everything within `deadline`. On any failure, or when `progress` raises, the temp file is removed
    and the error re-raised (DownloadError for network problems).
    """
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    out = os.fdopen(fd, "wb")
    st = _Transfer()

    def work() -> None:
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "gpt2-tui"})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                length = r.headers.get("Content-Length")
                st.total = int(length) if length and length.isdigit() else None
                st.answered = True
                while not st.cancel.is_set():
                    chunk = r.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    st.done += len(chunk)
        except BaseException as e:  # handed to the caller's thread
            st.error = e
        finally:
            out.close()

    worker = threading.Thread(target=work, name=f"download {dest.name}", daemon=True)
    t0 = time.monotonic()
    worker.start()
    shown = -1
    try:
        while worker.is_alive():
            worker.join(0.1)
            waited = time.monotonic() - t0
            if progress and st.answered and st.done != shown:
                shown = st.done
                progress(st.done, st.total)
            if not st.answered and waited > timeout and worker.is_alive():
                raise DownloadError(f"no answer within {timeout:g} s")
            if deadline is not None and waited > deadline and worker.is_alive():
                raise DownloadError(f"not finished within {deadline:g} s ({st.done} bytes received)")
        if st.error is not None:
            raise DownloadError(_describe(st.error, timeout)) from st.error
        if st.total is not None and st.done != st.total:
            raise DownloadError(f"connection closed after {st.done} of {st.total} bytes")
        if progress and st.done != shown:
            progress(st.done, st.total)
        os.replace(tmp, dest)
    except BaseException:
        # The worker may still hold the file open; unlinking is safe (it writes to a nameless inode).
        st.cancel.set()
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return dest


class _Transfer:
    """State shared by a download's worker thread and the caller (ints and a bool: GIL-atomic)."""

    def __init__(self) -> None:
        self.done = 0
        self.total: int | None = None
        self.answered = False
        self.error: BaseException | None = None
        self.cancel = threading.Event()


def _describe(e: BaseException, timeout: float) -> str:
    """A few words for a network error, without urllib's nesting."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    reason = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(reason, socket.gaierror):
        return "the host name could not be resolved (no network or DNS)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):  # socket.timeout is an alias since 3.10
        return f"timed out after {timeout:g} s"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error: {reason}"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def make_dirs(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders created (deepest first) so a failure can remove them."""
    created: list[Path] = []
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def remove_empty_dirs(created: list[Path]) -> None:
    for d in created:  # deepest first; stops being able to at the first non-empty one
        with suppress(OSError):
            d.rmdir()


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)  # no second copy of a 1.4 GB file
    except FileExistsError:
        pass  # another process (a second rank) got there first
    except OSError:
        def copy(f: BinaryIO) -> None:
            with open(src, "rb") as r:
                shutil.copyfileobj(r, f)

        _replace_atomically(dest, copy)


def _write_json(path: Path, data: dict[str, object]) -> None:
    _replace_atomically(path, lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))


def _replace_atomically(dest: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write through a unique temp file and rename: two processes resolving one model at once (two
    ranks) each rename a whole file, never clobber each other's half-written one."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
        os.replace(tmp, dest)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
