"""ConfigForm: every RunConfig field, grouped, labelled with its run_glue flag name and its help.

The form holds raw text; the screen turns it into a RunConfig (``RunConfig.from_dict`` + ``validate``)
and hands the problems back with ``mark``, which puts each reason under its field.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Checkbox, Input, Label, Select, Static
from textual.widgets.select import InvalidSelectValueError

from core.config import GROUP_TITLES, REFERENCE_MODEL, TINY_MODEL, RunConfig

# The CLI's group titles (core.config.GROUP_TITLES), capitalised as headings.
GROUPS = {key: title[:1].upper() + title[1:] for key, title in GROUP_TITLES.items()}
SUGGESTIONS = {
    "model_name_or_path": lambda: [REFERENCE_MODEL, "gpt2-en", TINY_MODEL],  # core.models.known_models()
    "data_dir": lambda: ["sample", "glue"],
    "device": lambda: ["auto", "cpu", "gpu"],
    "devices": lambda: ["auto", "cpu:1", "cpu:2", "gpu", "gpu:0"],
    "task_name": lambda: ["sst-2"],
}


def _is_bool(f: dataclasses.Field[Any]) -> bool:
    return (f.type if isinstance(f.type, str) else f.type.__name__) == "bool"


def _text(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


class ChoiceSelect(Select[Any], inherit_bindings=False):
    """A Select whose menu opens on enter or space only: up and down keep moving between the form's fields."""

    BINDINGS = [Binding("enter,space", "show_overlay", "Show menu", show=False)]


class FieldRow(Container):
    """One field: flag name, control, help; the reason it is wrong below, when it is."""

    def __init__(self, f: dataclasses.Field[Any]):
        super().__init__(id=f"row-{f.name}", classes="field-row")
        self.field = f

    def compose(self) -> ComposeResult:
        f = self.field
        yield Label(f.name, classes="field-name")
        if _is_bool(f):
            yield Checkbox("", value=bool(f.default), id=f"field-{f.name}", compact=True, classes="field-control")
        elif f.metadata.get("choices"):
            # A fixed set of words (engine): a Select, so a typo cannot happen.
            yield ChoiceSelect([(c, c) for c in f.metadata["choices"]], value=f.default, allow_blank=False,
                               id=f"field-{f.name}", compact=True, classes="field-control")
        else:
            words = SUGGESTIONS.get(f.name)
            # A steady cursor: a blinking one repaints the form's rows twice a second, ~1 % of a core
            # on a screen where nothing else moves (bench/screen_cpu.py, configure).
            field = Input(_text(f.default), id=f"field-{f.name}", compact=True, classes="field-control",
                          suggester=SuggestFromList(words(), case_sensitive=False) if words else None,
                          select_on_focus=False)
            field.cursor_blink = False
            yield field
        yield Static(f.metadata.get("help", ""), classes="field-help")
        yield Static("", classes="field-error")


class ConfigForm(VerticalScroll):
    """The run settings as a form. ``values()`` gives raw values; ``Changed`` follows every edit."""

    # Up/down move between fields (a one-line Input has no use for them), as in a spreadsheet.
    BINDINGS = [Binding("down", "app.focus_next", "Next field", show=False),
                Binding("up", "app.focus_previous", "Previous field", show=False)]

    class Changed(Message):
        def __init__(self, form: ConfigForm, name: str):
            super().__init__()
            self.form = form
            self.name = name

        @property
        def control(self) -> ConfigForm:
            return self.form

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._marked: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        fields = dataclasses.fields(RunConfig)
        for key, title in GROUPS.items():
            yield Static(title, classes="group-title")
            for f in fields:
                if f.metadata.get("group") == key:
                    yield FieldRow(f)

    # ------------------------------------------------------------------ values
    def control(self, name: str) -> Input | Checkbox | Select[Any]:
        widget = self.query_one(f"#field-{name}")
        assert isinstance(widget, Input | Checkbox | Select), widget  # FieldRow makes one of the three
        return widget

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in RunConfig.field_names():
            out[name] = self.control(name).value
        return out

    def set_value(self, name: str, value: Any) -> None:
        """Set one field as the user would (a Changed message follows)."""
        w = self.control(name)
        if isinstance(w, Checkbox):
            w.value = bool(value)
        elif isinstance(w, Select):
            _select(w, value)
        else:
            w.value = _text(value)

    def set_config(self, cfg: RunConfig) -> None:
        """Fill every field, quietly (one Changed at the end, not one per field)."""
        with self.prevent(Input.Changed, Checkbox.Changed, Select.Changed):
            for name, value in cfg.to_dict().items():
                w = self.control(name)
                if isinstance(w, Checkbox):
                    w.value = bool(value)
                elif isinstance(w, Select):
                    _select(w, value)
                else:
                    w.value = _text(value)
                    w.cursor_position = len(w.value)
        self.post_message(self.Changed(self, ""))

    def mark(self, problems: dict[str, str]) -> None:
        """Show each field's problem (field name -> reason); fields not named are cleared.

        Only rows whose reason changed are touched: updating a Static re-lays out the whole form
        (~0.1 s for 24 grid rows), and this runs on every keystroke.
        """
        for name in RunConfig.field_names():
            reason = problems.get(name, "")
            if self._marked.get(name, "") == reason:
                continue
            self._marked[name] = reason
            row = self.query_one(f"#row-{name}", FieldRow)
            row.set_class(bool(reason), "-invalid")
            self.control(name).set_class(bool(reason), "-invalid")
            row.query_one(".field-error", Static).update(f"✘ {reason}" if reason else "")

    # ------------------------------------------------------------------ events
    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self, (event.input.id or "").removeprefix("field-")))

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self, (event.checkbox.id or "").removeprefix("field-")))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self, (event.select.id or "").removeprefix("field-")))


def _select(w: Select[Any], value: Any) -> None:
    """Choose ``value``; a word the Select does not offer (a hand-edited config) stays as it was, and the
    config's validation names it."""
    with contextlib.suppress(InvalidSelectValueError):
        w.value = value
