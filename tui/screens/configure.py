"""ConfigureScreen: the run settings form, device picker, command preview, preflight and launch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, Static

from core.config import ConfigError, RunConfig
from core.config_toml import dump_toml, load_toml
from core.presets import PRESETS
from tui.messages import DevicesSampled, RunLaunched
from tui.screens.path_prompt import PathPrompt
from tui.services import Services
from tui.widgets.command_preview import CommandPreview
from tui.widgets.config_form import ConfigForm
from tui.widgets.device_picker import DevicePicker
from tui.widgets.preflight_list import PreflightList

if TYPE_CHECKING:
    from core.devices import DeviceReport

PRESET_TEXT = {
    "reference": "reference recipe: GPT-2 Medium on GLUE SST-2, seq 128, batch 32, lr 2e-5, 3 epochs, mixed precision",
    "offline": "offline: the bundled gpt2-tiny on the bundled SST-2 sample, 2 CPU processes (about a minute)",
}
# Re-check (data files, disk, devices) this long after the last keystroke, not on every one.
PREFLIGHT_DEBOUNCE_S = 0.6


def problems_of(values: dict[str, Any], report: DeviceReport | None) -> tuple[RunConfig | None, dict[str, str]]:
    """The config the form describes, or the reason each wrong field is wrong (field -> message)."""
    from core.devices import DeviceError
    from tui.preflight import select_devices

    try:
        cfg = RunConfig.from_dict(values, source="form")
    except ConfigError as e:
        return None, {where: what for where, what in e.problems}
    problems: dict[str, str] = {}
    for name, message in cfg.validate():
        problems.setdefault(name, message)
    if report is not None and "devices" not in problems and "device" not in problems:
        try:
            select_devices(cfg, report)
        except DeviceError as e:
            problems["devices"] = str(e)
    return cfg, problems


class ConfigureScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+l", "launch", "Launch", priority=True),
        Binding("ctrl+t", "next_preset", "Preset", priority=True),
        Binding("ctrl+r", "preflight", "Check", priority=True),
        Binding("ctrl+y", "copy_command", "Copy cmd", priority=True),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+o", "load", "Load", priority=True),
        Binding("ctrl+v", "paste_command", "Paste cmd", priority=True),
        Binding("ctrl+g", "app.show_running", "Running runs", priority=True),
    ]
    TITLE = "gpt2-tui"
    SUB_TITLE = "configure a run"
    AUTO_FOCUS = "#field-model_name_or_path"

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.preset: str | None = None
        self.preset_reason = ""
        self._applied: dict[str, Any] = {}
        self.cfg: RunConfig | None = None
        self.problems: dict[str, str] = {}
        self.report: DeviceReport | None = None
        self.launching = False
        self._preflight_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="configure-body"):
            with Vertical(id="form-col"):
                yield Static("detecting devices to choose a preset…", id="preset-banner")
                yield ConfigForm(id="form")
            with VerticalScroll(id="side-col"):
                yield Static("Devices", classes="section-title")
                yield DevicePicker(id="picker")
                yield Static("Command (ctrl+y copies)", classes="section-title")
                yield CommandPreview(id="command")
                yield Static("Preflight (ctrl+r)", classes="section-title")
                yield PreflightList(id="preflight")
                yield Static("", id="launch-status")
        yield Footer()

    def on_mount(self) -> None:
        self.form.set_config(PRESETS["offline"]())
        self._applied = self.form.values()
        self._catch_up()

    def on_screen_resume(self) -> None:
        self.services.devices.want(self, self.services.sample_interval)
        self._catch_up()

    def on_screen_suspend(self) -> None:
        self.services.devices.release(self)

    def on_unmount(self) -> None:
        self.services.devices.release(self)

    def _catch_up(self) -> None:
        """The latest reading, taken while another screen was in front (the app hands readings to the
        screen in front only)."""
        sample = self.services.devices.latest
        if sample is not None and sample.report is not self.report:
            self._take_report(sample.report)

    @property
    def touched(self) -> bool:
        """Whether the form differs from the preset last applied (a new preset then leaves it alone)."""
        return self.form.values() != self._applied

    @property
    def form(self) -> ConfigForm:
        return self.query_one("#form", ConfigForm)

    @property
    def runs_root(self) -> Path:
        return self.services.runs_root

    # ------------------------------------------------------------------ presets
    def apply_preset(self, name: str, reason: str) -> None:
        self.preset, self.preset_reason = name, reason
        self.form.set_config(PRESETS[name]())
        self._applied = self.form.values()
        banner = Text()
        banner.append(f"Preset: {PRESET_TEXT[name]}", style="bold")
        banner.append(f"\n{reason}  ctrl+t switches presets.", style="dim")
        self.query_one("#preset-banner", Static).update(banner)

    def load_config(self, cfg: RunConfig, source: str) -> None:
        """Fill the form from a run (clone) or a file; the banner says where it came from."""
        self.form.set_config(cfg)
        self._applied = self.form.values()
        banner = Text()
        banner.append(f"Config: {source}", style="bold")
        banner.append("\nChange what you like, then ctrl+l launches it as a new run.  ctrl+t switches presets.",
                      style="dim")
        self.query_one("#preset-banner", Static).update(banner)
        self.revalidate()

    def action_next_preset(self) -> None:
        name = "offline" if self.preset == "reference" else "reference"
        self.apply_preset(name, "chosen by you")

    def _take_report(self, report: DeviceReport) -> None:
        first = self.report is None
        self.report = report
        self.query_one("#picker", DevicePicker).show_report(report)
        if first:
            if not self.touched:
                if report.gpus:
                    names = sorted({g.name for g in report.gpus})
                    self.apply_preset("reference", f"Chosen because {len(report.gpus)} GPU(s) were found "
                                                   f"({', '.join(names)}).")
                else:
                    why = "; ".join(report.errors) or "none detected"
                    self.apply_preset("offline", f"Chosen because no GPU was found ({why}): CPU only.")
            self.revalidate()

    def on_devices_sampled(self, event: DevicesSampled) -> None:
        self._take_report(event.sample.report)

    # ------------------------------------------------------------------ validation as you type
    def on_config_form_changed(self, event: ConfigForm.Changed) -> None:
        if event.name in ("devices", ""):
            self.query_one("#picker", DevicePicker).reflect(str(self.form.values()["devices"]))
        self.revalidate()

    def on_device_picker_picked(self, event: DevicePicker.Picked) -> None:
        self.form.set_value("devices", event.spec)

    def revalidate(self) -> None:
        cfg, problems = problems_of(self.form.values(), self.report)
        self.problems = problems
        self.cfg = cfg if not problems else None
        self.form.mark(problems)
        from tui.command import preview_text  # core.data and core.models: not needed for the first frame

        preview = self.query_one("#command", CommandPreview)
        if problems:
            preview.show(None, f"fix {len(problems)} field(s) first: {', '.join(problems)}")
        elif self.report is None:
            preview.show(None, None)
        else:
            assert cfg is not None
            preview.show(preview_text(cfg, self.runs_root, self.report))
        if self._preflight_timer is not None:
            self._preflight_timer.stop()
        if problems:
            # The last checklist was for other settings: do not let it say "ready".
            self.query_one("#preflight", PreflightList).show(None, note="not checked: fix the marked fields first")
        else:
            self._preflight_timer = self.set_timer(PREFLIGHT_DEBOUNCE_S, self.action_preflight)

    # ------------------------------------------------------------------ preflight and launch
    def action_preflight(self) -> None:
        if self.cfg is None:
            self.notify("Fix the marked fields first.", severity="warning")
            return
        self.query_one("#preflight", PreflightList).show(self.query_one("#preflight", PreflightList).checks, True)
        self._preflight(self.cfg, self.report, launch=False)

    def action_launch(self) -> None:
        if self.launching:
            self.notify("Already launching.")
            return
        if self.problems or self.cfg is None:
            names = ", ".join(self.problems) or "the form"
            self.notify(f"Launch refused: fix {names}.", title="Invalid settings", severity="error")
            first = next(iter(self.problems), None)
            if first and first in RunConfig.field_names():
                self.form.control(first).focus()
            return
        self.launching = True
        self._status("checking before launch…")
        self._preflight(self.cfg, self.report, launch=True)

    @work(thread=True, exclusive=True, group="preflight", exit_on_error=False)
    def _preflight(self, cfg: RunConfig, report: DeviceReport | None, launch: bool) -> None:
        from tui.preflight import FAIL, blocking, run_preflight

        checks = run_preflight(cfg, self.runs_root, report)
        self.app.call_from_thread(self._show_checks, cfg, checks, launch)
        if not launch:
            return
        if blocking(checks):
            self.app.call_from_thread(self._launch_failed, "preflight failed: " +
                                      "; ".join(c.name for c in checks if c.status == FAIL))
            return
        self.app.call_from_thread(self._status, "launching…")

        def progress(done: int, total: int | None) -> None:
            text = f"downloading {100 * done / total:.0f}%" if total else f"downloading {done / 1e6:.0f} MB"
            self.app.call_from_thread(self._status, text)

        try:
            with self.services.store() as store:
                run = self.services.launcher.launch(store, cfg, report, progress=progress)
        except Exception as e:  # a user error (data, model, devices) or a failed start: say it, stay here
            self.app.call_from_thread(self._launch_failed, str(e) or type(e).__name__)
            return
        self.app.call_from_thread(self._launched, run)

    def _show_checks(self, cfg: RunConfig, checks: list[Any], launch: bool) -> None:
        if launch or cfg == self.cfg:  # a check of settings edited since then is not shown
            self.query_one("#preflight", PreflightList).show(checks)

    def _status(self, text: str, style: str = "bold") -> None:
        self.query_one("#launch-status", Static).update(Text(text, style=style))

    def _launch_failed(self, why: str) -> None:
        self.launching = False
        self._status(f"launch refused: {why}", "bold red")
        self.notify(why, title="Launch refused", severity="error", timeout=10)

    def _launched(self, run: dict[str, Any]) -> None:
        self.launching = False
        self._status(f"launched {run['id']}", "bold green")
        self.post_message(RunLaunched(run))

    # ------------------------------------------------------------------ command, save, load
    def action_copy_command(self) -> None:
        command = self.query_one("#command", CommandPreview).command
        if command is None:
            self.notify("No command yet: fix the marked fields.", severity="warning")
            return
        self.app.copy_to_clipboard(command)
        self.notify("Command copied to the clipboard.")

    def action_save(self) -> None:
        try:
            cfg = RunConfig.from_dict(self.form.values(), source="form")
        except ConfigError as e:
            self.notify(e.render(), title="Cannot save", severity="error")
            return

        def save(path: str | None) -> None:
            if not path:
                return
            try:
                Path(path).expanduser().write_text(dump_toml(cfg))
            except OSError as e:
                self.notify(f"{path}: {e.strerror or e}", title="Cannot save", severity="error")
                return
            self.notify(f"Saved to {path}.")

        self.app.push_screen(PathPrompt("Save the config as TOML:", "run.toml"), save)

    def action_load(self) -> None:
        def load(path: str | None) -> None:
            if not path:
                return
            try:
                values = load_toml(path)
                cfg = RunConfig.from_dict({**self.form.values(), **values}, source=path)
            except ConfigError as e:
                self.notify(e.render(), title="Cannot load", severity="error", timeout=10)
                return
            self.form.set_config(cfg)
            self.notify(f"Loaded {path}.")

        self.app.push_screen(PathPrompt("Load a config from TOML:", "run.toml"), load)

    # ------------------------------------------------------------------ a pasted run_glue command
    def action_paste_command(self) -> None:
        from tui.widgets.command_paste import CommandPaste

        self.app.push_screen(CommandPaste(), self.fill_from_command)

    def fill_from_command(self, text: str | None) -> None:
        """Set each field the command names (the rest keep their values) and say what was left out."""
        from tui.widgets.command_paste import form_values

        if not text:
            return
        try:
            values, unmapped = form_values(text)
        except ValueError as e:
            self.notify(str(e), title="Cannot read the command", severity="error", timeout=10)
            return
        for name, value in values.items():
            self.form.set_value(name, value)
        banner = Text()
        banner.append(f"Config: pasted command ({len(values)} setting(s) taken)", style="bold")
        if unmapped:
            banner.append("\nnot mapped (ignored): " + "  ".join(unmapped), style="yellow")
        banner.append("\nChange what you like, then ctrl+l launches.  ctrl+t switches presets.", style="dim")
        self.query_one("#preset-banner", Static).update(banner)
        note = f"{len(values)} setting(s) filled" + (f"; not mapped: {'  '.join(unmapped)}" if unmapped else "")
        self.notify(note, title="Pasted command", severity="warning" if unmapped else "information", timeout=10)
