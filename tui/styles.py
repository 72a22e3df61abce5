"""Stylesheets shared by several screens (absolute paths: a screen defined anywhere finds them)."""

from pathlib import Path

# The history, run page, compare and results screens and their dialogs.
HISTORY_TCSS = str(Path(__file__).with_name("history.tcss"))
