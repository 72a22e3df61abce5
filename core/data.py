"""SST-2 TSV files: read, validate, and fetch GLUE's copy. No paddle import (the UI process uses this).

Format (GLUE SST-2): ``train.tsv`` and ``dev.tsv`` start with the header ``sentence<TAB>label`` and have
one ``sentence<TAB>0|1`` row a line (0 negative, 1 positive); ``test.tsv`` has ``index<TAB>sentence``
and no labels. Every problem becomes a DataError naming the file and line and saying how to fix it,
instead of a KeyError or a silent label of 2 deep inside training.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.config import ASSETS
from core.models import DownloadError, ProgressFn, download_file, make_dirs, paddlenlp_home, remove_empty_dirs

SAMPLE_DIR = ASSETS / "sst2-sample"
# Where PaddleNLP's own load_dataset("glue", "sst-2") downloads SST-2 (paddlenlp/datasets/glue.py),
# with its md5: a copy PaddleNLP already fetched is reused, and ours is reused by PaddleNLP.
GLUE_URL = "https://bj.bcebos.com/dataset/glue/SST.zip"
GLUE_MD5 = "9f81648d4199384278b86e315dac217c"
GLUE_URL_ENV = "GPT2_TUI_GLUE_URL"  # tests and mirrors point this elsewhere (no md5 check then)
LABELLED_HEADER = ("sentence", "label")
TEST_HEADER = ("index", "sentence")
SPLITS = ("train", "dev", "test")
_FIX_DIR = "Pass --data_dir a folder with SST-2 train.tsv and dev.tsv, 'sample' (bundled) or 'glue' (download)"


class DataError(ValueError):
    """A problem with an SST-2 file. ``str()`` is one paragraph: ``<path>:<line>: <what>. <how to fix>``."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, problem: str, fix: str = ""):
        self.path = str(path)
        self.line = line
        self.problem = problem.rstrip(". ")
        self.fix = fix if not fix or fix.endswith((".", "?", "!")) else fix + "."
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {self.problem}. {self.fix}".strip())


@dataclass
class DataSummary:
    """What validate_dir found; label counts are (negative, positive)."""

    path: Path
    train_rows: int
    dev_rows: int
    test_rows: int | None
    train_labels: tuple[int, int]
    dev_labels: tuple[int, int]
    warnings: list[str] = field(default_factory=list)

    @property
    def train_positive_share(self) -> float:
        return self.train_labels[1] / max(1, self.train_rows)

    @property
    def dev_positive_share(self) -> float:
        return self.dev_labels[1] / max(1, self.dev_rows)


def _show(cols: Iterable[str]) -> str:
    return "'" + "<TAB>".join(cols) + "'"


def read_split(path: str | os.PathLike[str], labelled: bool = True) -> list[tuple[str, int]]:
    """Rows of one SST-2 split as (sentence, label); label -1 for test.tsv (``labelled=False``).

    Accepts a UTF-8 BOM and CRLF line ends; ignores blank lines at the end. Sentences are stripped of
    surrounding whitespace (GLUE's train.tsv ends each with a space, which would otherwise become the
    last token, the one GPTForSequenceClassification pools).
    """
    p = Path(path)
    header = LABELLED_HEADER if labelled else TEST_HEADER
    row_shape = _show(header)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError(p, None, "file not found", _FIX_DIR) from None
    except IsADirectoryError:
        raise DataError(p, None, "is a folder, not a TSV file", _FIX_DIR) from None
    except OSError as e:
        raise DataError(p, None, f"cannot read: {e.strerror or e}", "Check the file's permissions") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = raw.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(p, None, "file is empty",
                        f"An SST-2 split starts with the header {row_shape}, then one row a line")

    rows: list[tuple[str, int]] = []
    for n, b in enumerate(lines, start=1):
        if b.endswith(b"\r"):
            b = b[:-1]
        try:
            text = b.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(p, n, f"not valid UTF-8 (byte 0x{b[e.start]:02x} at column {e.start + 1})",
                            "Save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 in.tsv > out.tsv") from None
        cols = text.split("\t")
        if n == 1:
            if tuple(c.strip() for c in cols) != header:
                got = f"first line is {text[:60]!r}"
                if len(cols) != len(header):
                    got += f" ({len(cols)} column{'s' * (len(cols) != 1)})"
                raise DataError(p, 1, f"wrong header: {got}, expected {row_shape}",
                                f"Make the first line exactly {row_shape} (tab-separated)"
                                + ("" if labelled else "; test.tsv has no labels"))
            continue
        if not text.strip():
            raise DataError(p, n, "empty line", "Remove the empty line")
        if len(cols) == 1:
            raise DataError(p, n, f"row has no tab, expected {row_shape}",
                            "Separate the columns with one tab character (not spaces)")
        if len(cols) != 2:
            raise DataError(p, n, f"row has {len(cols)} tab-separated columns, expected 2 ({row_shape})",
                            "A sentence must not contain a tab; replace it with a space")
        if labelled:
            sentence, label = cols[0].strip(), cols[1].strip()
            if label not in ("0", "1"):
                raise DataError(p, n, f"label is {label!r}, expected 0 (negative) or 1 (positive)",
                                "SST-2 is binary; fix or remove the row")
            y = int(label)
        else:
            index, sentence = cols[0].strip(), cols[1].strip()
            if not index.isdigit():
                raise DataError(p, n, f"index is {index!r}, expected a whole number",
                                f"test.tsv rows are {row_shape}")
            y = -1
        if not sentence:
            raise DataError(p, n, "sentence is empty", "Write the sentence or remove the row")
        rows.append((sentence, y))
    if not rows:
        raise DataError(p, 1, "only a header, no data rows", "Add one row a line after the header")
    return rows


def resolve_data_dir(data_dir: str, progress: ProgressFn | None = None, timeout: float = 20.0) -> Path:
    """RunConfig.data_dir -> a folder: 'sample' = the bundled sample, 'glue' = GLUE's (downloaded once)."""
    if data_dir == "sample":
        return SAMPLE_DIR
    if data_dir == "glue":
        return ensure_glue_sst2(progress=progress, timeout=timeout)
    return Path(data_dir).expanduser()


def validate_dir(data_dir: str | os.PathLike[str]) -> DataSummary:
    """Read train.tsv, dev.tsv and (when present) test.tsv; raise DataError at the first problem."""
    d = Path(data_dir).expanduser()
    if not d.exists():
        raise DataError(d, None, "data folder not found", _FIX_DIR)
    if not d.is_dir():
        raise DataError(d, None, "is a file, not a folder", _FIX_DIR)
    missing = [f"{s}.tsv" for s in ("train", "dev") if not (d / f"{s}.tsv").is_file()]
    if missing:
        raise DataError(d, None, f"the folder has no {' and no '.join(missing)}", _FIX_DIR)
    train = read_split(d / "train.tsv")
    dev = read_split(d / "dev.tsv")
    test = read_split(d / "test.tsv", labelled=False) if (d / "test.tsv").is_file() else None
    t1, d1 = sum(y for _, y in train), sum(y for _, y in dev)
    warnings: list[str] = []
    if t1 in (0, len(train)):
        warnings.append(f"train.tsv has only label {train[0][1]}: the model cannot learn to tell them apart")
    overlap = len({s for s, _ in dev} & {s for s, _ in train})
    if overlap:
        warnings.append(f"{overlap} dev sentence(s) also appear in train.tsv: dev accuracy will be optimistic")
    return DataSummary(d, len(train), len(dev), None if test is None else len(test),
                       (len(train) - t1, t1), (len(dev) - d1, d1), warnings)


def count_truncated(rows: Iterable[tuple[str, int]], tokenize_len: Callable[[str], int],
                    max_seq_length: int) -> int:
    """How many rows are longer than max_seq_length tokens (and so lose their end)."""
    return sum(1 for s, _ in rows if tokenize_len(s) > max_seq_length)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ GLUE
def glue_cache_dir() -> Path:
    """PaddleNLP's DATA_HOME/Glue: $PPNLP_HOME/datasets/Glue."""
    return paddlenlp_home() / "datasets" / "Glue"


def glue_sst2_dir() -> Path:
    """Where `--data_dir glue` lands: GLUE's SST-2 folder in PaddleNLP's cache (there or not yet)."""
    return glue_cache_dir() / "SST-2"


def ensure_glue_sst2(cache_dir: str | os.PathLike[str] | None = None, timeout: float = 20.0,
                     progress: ProgressFn | None = None, deadline: float = 600.0) -> Path:
    """The GLUE SST-2 folder (train/dev/test.tsv), downloading and unpacking SST.zip (7 MB) when missing.

    `timeout` bounds the wait for an answer and each read (offline this fails in at most ~timeout
    seconds), `deadline` the whole download. `progress(done_bytes, total_or_None)` runs on this thread.
    Nothing partial is left behind: the zip goes to a temp file that is renamed when whole, is unpacked
    into a temp folder, and the .tsv files are renamed into place.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else glue_cache_dir()
    final = root / "SST-2"
    if (final / "train.tsv").is_file() and (final / "dev.tsv").is_file():
        return final
    url = os.environ.get(GLUE_URL_ENV) or GLUE_URL
    fix = (f"Check the network (or set {GLUE_URL_ENV} to a mirror), or download SST.zip yourself, unzip it "
           "and pass --data_dir /path/to/SST-2 (a folder with train.tsv and dev.tsv); "
           "--data_dir sample trains on the bundled sample offline")
    try:
        created = make_dirs(root)
    except OSError as e:
        raise DataError(root, None, f"cannot create the cache folder: {e.strerror or e}",
                        "Set PPNLP_HOME to a writable folder, or pass --data_dir") from None
    zip_path = root / "SST.zip"
    try:
        download_file(url, zip_path, progress=progress, timeout=timeout, deadline=deadline)
        if url == GLUE_URL:
            md5 = hashlib.md5(zip_path.read_bytes(), usedforsecurity=False).hexdigest()
            if md5 != GLUE_MD5:
                raise DataError(url, None, f"downloaded SST.zip is damaged (md5 {md5}, expected {GLUE_MD5})",
                                "Try again; " + fix)
        _unpack(zip_path, root, final, url)
    except DownloadError as e:
        zip_path.unlink(missing_ok=True)
        remove_empty_dirs(created)
        raise DataError(url, None, f"could not download GLUE SST-2: {e}", fix) from e
    except BaseException:
        zip_path.unlink(missing_ok=True)
        remove_empty_dirs(created)
        raise
    zip_path.unlink(missing_ok=True)  # the 7 MB zip is not needed once unpacked
    validate_dir(final)
    return final


def _unpack(zip_path: Path, root: Path, final: Path, url: str) -> None:
    """Copy <anything>/train.tsv, dev.tsv, test.tsv out of the zip into `final`, each renamed into place.

    Only those three names are written, to paths we build: a hostile member name cannot escape root.
    """
    try:
        with zipfile.ZipFile(zip_path) as z:
            names = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == "train.tsv"]
            if not names:
                raise DataError(url, None, "the zip has no train.tsv", "Point the URL at GLUE's SST.zip")
            prefix = min(names, key=len)[: -len("train.tsv")]  # SST-2/ in GLUE's zip; skip original/
            tmp = Path(tempfile.mkdtemp(dir=root, prefix=".SST-2."))
            try:
                for split in SPLITS:
                    member = f"{prefix}{split}.tsv"
                    if member not in z.namelist():
                        if split == "test":
                            continue
                        raise DataError(url, None, f"the zip has no {member}", "Point the URL at GLUE's SST.zip")
                    with z.open(member) as src, open(tmp / f"{split}.tsv", "wb") as dst:
                        shutil.copyfileobj(src, dst)
                final.mkdir(exist_ok=True)
                for f in sorted(tmp.iterdir()):
                    os.replace(f, final / f.name)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except zipfile.BadZipFile as e:
        raise DataError(url, None, f"the download is not a valid zip ({e})", "Point the URL at GLUE's SST.zip") from None
