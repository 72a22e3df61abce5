"""Preflight: what to check before a launch, as a checklist. Pure, no Textual (unit-testable).

Each check answers ok / warn / fail with one line of detail. A fail refuses the launch; a warn is
shown and allowed (a model that is downloaded at launch, a busy GPU someone may be about to free).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import data, models
from core.config import RunConfig
from core.devices import DeviceError, DeviceReport, DeviceSelection, GpuInfo, gpu_problem, parse_devices

OK, WARN, FAIL = "ok", "warn", "fail"
# AdamW checkpoints hold fp32 weights and two fp32 moments: 12 bytes a parameter (core/train.py saves
# model_state + optimizer.pdopt). GPT-2 Medium: 354.9 M parameters -> ~4.3 GB a checkpoint.
DOWNLOAD_BYTES = {"gpt2-en": 0.5e9, "gpt2-medium-en": 1.4e9}
# A GPU with more than this share of its memory in use, or this utilisation, is someone else's job.
BUSY_MEM_SHARE = 0.10
BUSY_UTIL = 20.0
BUSY_CPU_LOAD = 50.0


@dataclass(frozen=True)
class Check:
    name: str  # 'data' | 'model' | 'disk' | 'devices'
    status: str  # ok | warn | fail
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != FAIL


def select_devices(cfg: RunConfig, report: DeviceReport) -> DeviceSelection:
    """Raises DeviceError with a one-line reason."""
    return parse_devices(cfg.device_spec(), report)


# ---------------------------------------------------------------------------- the checks
def check_data(cfg: RunConfig) -> Check:
    if cfg.data_dir == "glue":
        folder = data.glue_sst2_dir()
        if not ((folder / "train.tsv").is_file() and (folder / "dev.tsv").is_file()):
            return Check("data", WARN, f"GLUE SST-2 not downloaded yet: SST.zip (7 MB) is fetched into "
                                       f"{folder.parent} at launch")
    else:
        folder = data.resolve_data_dir(cfg.data_dir)
    try:
        summary = data.validate_dir(folder)
    except data.DataError as e:
        return Check("data", FAIL, str(e))
    except OSError as e:
        return Check("data", FAIL, f"{folder}: cannot read: {e}")
    detail = (f"{summary.train_rows:,} train / {summary.dev_rows:,} dev rows, "
              f"{100 * summary.train_positive_share:.0f}% positive ({folder})")
    if summary.warnings:
        return Check("data", WARN, detail + "; " + "; ".join(summary.warnings))
    return Check("data", OK, detail)


def check_model(cfg: RunConfig) -> Check:
    name = cfg.model_name_or_path.strip()
    if models.is_available_locally(name):
        return Check("model", OK, f"{name}: available locally")
    if name in models.known_models():
        size = models.APPROX_SIZE.get(name, "?")
        return Check("model", WARN, f"{name}: not downloaded yet; {size} is fetched into {models.cache_dir(name)} "
                                    "at launch")
    try:  # not a known name: a local folder, which resolve_model checks without the network
        models.resolve_model(name)
    except models.ModelError as e:
        return Check("model", FAIL, str(e))
    return Check("model", OK, f"{name}: local folder")


def _existing(path: Path) -> Path:
    p = path.resolve()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def check_disk(cfg: RunConfig, runs_root: Path, report: DeviceReport | None = None) -> Check:
    """Room for the whole run's checkpoints (core.disk_plan: the same rule refuses the launch) and the
    model download."""
    from core import disk_plan, eval_cost

    target = Path(cfg.output_dir).expanduser() if cfg.output_dir else runs_root
    try:
        where, free = disk_plan.free_bytes(target)
    except OSError as e:
        return Check("disk", FAIL, f"{target}: {e}")
    rows = _rows(cfg)
    plan = disk_plan.plan(cfg, rows[0] if rows else eval_cost.SST2_ROWS[0], _world(cfg, report))
    download = 0 if models.is_available_locally(cfg.model_name_or_path.strip()) else \
        int(DOWNLOAD_BYTES.get(cfg.model_name_or_path.strip(), 0))
    each = plan.weights_bytes + plan.optimizer_bytes
    text = (f"{disk_plan.gb(free)} free; checkpoints ~{disk_plan.gb(plan.need_bytes)} at the peak "
            f"({plan.saves} of ~{disk_plan.gb(each)}, {plan.kept} kept)")
    if (reason := disk_plan.shortfall(plan, free - download)) is not None:
        return Check("disk", FAIL, f"{where}: {reason}" + (f" (and the model download, {disk_plan.gb(download)})"
                                                           if download else ""))
    if free - download < 1.2 * plan.need_bytes:  # logs, the token cache and other runs need room too
        return Check("disk", WARN, f"{text}: under 20 % to spare")
    return Check("disk", OK, text)


def _rows(cfg: RunConfig) -> tuple[int, int] | None:
    """(train, dev) rows of the run's data; GLUE's counts when 'glue' is not downloaded yet; None unreadable."""
    from core import eval_cost

    glue = data.glue_sst2_dir()
    try:
        folder = (glue if (glue / "dev.tsv").is_file() else None) if cfg.data_dir == "glue" \
            else data.resolve_data_dir(cfg.data_dir)
        return eval_cost.rows_of(folder)
    except (OSError, data.DataError):  # the data check says what is wrong with the folder
        return None


def _world(cfg: RunConfig, report: DeviceReport | None) -> int:
    try:
        return select_devices(cfg, report).nprocs * cfg.nnodes if report else cfg.nnodes
    except DeviceError:
        return cfg.nnodes


def check_devices(cfg: RunConfig, report: DeviceReport | None) -> Check:
    if report is None:
        return Check("devices", WARN, "devices not detected yet")
    try:
        sel = select_devices(cfg, report)
    except DeviceError as e:
        return Check("devices", FAIL, str(e))
    if sel.kind == "cpu":
        loads = report.cpu.load_per_core
        load = sum(loads) / len(loads) if loads else 0.0
        text = f"{sel.nprocs} CPU process(es) on {report.cpu.cores_logical} cores"
        unusable = gpu_problem(report)
        if unusable:  # a CPU run by choice, on a machine whose GPUs this paddle cannot use: say how to fix
            return Check("devices", WARN, f"{text}; {len(report.gpus)} GPU(s) here but paddle cannot use them: "
                                          f"{unusable}")
        if load > BUSY_CPU_LOAD:
            return Check("devices", WARN, f"{text}; the CPU is already {load:.0f}% busy")
        return Check("devices", OK, text)
    gpus = {g.index: g for g in report.gpus}
    busy = []
    for i in sel.ids:
        g = gpus[i]
        share = (g.mem_used or 0) / g.mem_total if g.mem_total else 0.0
        if share > BUSY_MEM_SHARE or (g.util or 0) > BUSY_UTIL:
            busy.append(f"GPU {i} in use ({100 * share:.0f}% memory, {g.util or 0:.0f}% util){_holders(g)}")
    text = f"GPU {', '.join(map(str, sel.ids))} ({gpus[sel.ids[0]].name})"
    if busy:
        return Check("devices", WARN, f"{text}: " + "; ".join(busy))
    return Check("devices", OK, f"{text}: free")


def check_recipe(cfg: RunConfig, report: DeviceReport | None) -> Check:
    """What the fast path would change in the recipe's numerics on the chosen devices (fast_path off: none)."""
    from core.trainer.fastpath import recipe_changes

    try:
        gpu = report is not None and select_devices(cfg, report).kind == "gpu"
    except DeviceError:
        gpu = False
    if cfg.engine == "paddlenlp":  # PaddleNLP's Trainer has no fast path: the flags are the numerics
        amp = "bf16" if cfg.bf16 else "fp16" if cfg.fp16 else "bf16 or fp16 (use_amp)" if cfg.use_amp and gpu else ""
        return Check("recipe", OK, "PaddleNLP's Trainer, no fast path: " + (f"{amp} mixed precision" if amp and gpu
                                                                             else "fp32"))
    changes = recipe_changes(cfg, gpu)
    if not changes:
        return Check("recipe", OK, "the recipe's numerics" + ("" if gpu else " (fp32 on the CPU)"))
    return Check("recipe", OK, "fast path: " + "; ".join(changes) + " (fast_path off keeps the recipe)")


def check_eval(cfg: RunConfig, report: DeviceReport | None) -> Check:
    """The share of the run that evaluation takes (core.eval_cost): a warning above ~10 %."""
    from core import eval_cost

    rows = _rows(cfg)
    if rows is None:
        return Check("eval", OK, "cannot estimate the evaluation time without the data files")
    world = _world(cfg, report)
    cost = eval_cost.estimate(cfg, *rows, world=world)
    if text := eval_cost.warning(cost):
        return Check("eval", WARN, text)
    return Check("eval", OK, eval_cost.summary(cost))


def _holders(g: GpuInfo, most: int = 3) -> str:
    """' by pid 4242 (alice, python, 30.0 GiB)': who holds a GPU, biggest first; '' where the driver lists
    nobody (ixsmi, or a process in another container)."""
    if not g.processes:
        return ""
    procs = sorted(g.processes, key=lambda p: -(p.gpu_memory or 0))
    names = [f"pid {p.pid} ({p.user or '?'}, {p.name or '?'}, "
             f"{'?' if p.gpu_memory is None else f'{p.gpu_memory / 1024**3:.1f} GiB'})" for p in procs[:most]]
    more = f" and {len(procs) - most} more" if len(procs) > most else ""
    return " by " + ", ".join(names) + more


def run_preflight(cfg: RunConfig, runs_root: Path, report: DeviceReport | None) -> list[Check]:
    checks = []
    args: dict[str, tuple[Any, ...]] = {"data": (cfg,), "model": (cfg,), "disk": (cfg, runs_root, report),
                                        "devices": (cfg, report), "eval": (cfg, report), "recipe": (cfg, report)}
    for name, a in args.items():
        fn = globals()[f"check_{name}"]  # looked up per call, so a test can replace one
        try:
            checks.append(fn(*a))
        except Exception as e:  # a check that crashes is a failed check, not a crashed dashboard
            checks.append(Check(name, FAIL, f"{type(e).__name__}: {e}"))
    return checks


def blocking(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL]


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def summary_line(checks: list[Check]) -> str:
    fails, warns = sum(c.status == FAIL for c in checks), sum(c.status == WARN for c in checks)
    if fails:
        return f"{fails} check(s) failed: launch refused"
    if warns:
        return f"ready, {warns} warning(s)"
    return "ready"


def checks_to_dict(checks: list[Check]) -> list[dict[str, Any]]:
    return [{"name": c.name, "status": c.status, "detail": c.detail} for c in checks]
