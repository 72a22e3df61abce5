"""update_text: a panel whose text keeps its shape is repainted without a whole-screen layout."""

from rich.text import Text

from tui.format import update_text


class Recorder:
    def __init__(self):
        self.calls = []

    def update(self, content, *, layout=True):
        self.calls.append(layout)


def test_layout_only_when_the_shape_changes():
    w = Recorder()
    update_text(w, Text("step 1\nloss 0.5"))
    update_text(w, Text("step 2\nloss 0.4"))  # same lines, same widths: repaint only
    update_text(w, Text("step 3\nloss 0.4\nNaN!"))  # a line more: the panel may grow
    update_text(w, Text("step 300000\nloss 0.4\nNaN!"))  # a wider widest line
    update_text(w, "step 300001\nloss 0.3\nNaN!")  # plain strings work too
    assert w.calls == [True, False, True, True, False]
