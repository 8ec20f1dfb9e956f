"""The generic name -> class table that models, backbones and losses share."""

import subprocess
import sys

import pytest

from pycrl.registry import Registry


class Thing:
    def __init__(self, size: int = 1, colour: str = "red"):
        self.size, self.colour = size, colour


def test_create_passes_keyword_arguments():
    reg = Registry("thing", name_attr="thing_name")
    reg.register("thing")(Thing)
    made = reg.create("thing", size=3, colour="blue")
    assert isinstance(made, Thing) and (made.size, made.colour) == (3, "blue")
    assert Thing.thing_name == "thing" and reg.get("thing") is Thing
    assert "thing" in reg and "other" not in reg
    with pytest.raises(TypeError, match="shape"):
        reg.create("thing", shape="round")


def test_duplicate_name_refused_same_class_allowed():
    reg = Registry("thing")
    assert reg.register("a")(Thing) is Thing
    reg.register("a")(Thing)  # a module imported twice
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.register("a")(type("Other", (), {}))
    assert reg.get("a") is Thing and reg.names() == ["a"]


def test_unknown_name_lists_registered_names():
    reg = Registry("thing")
    for name in ("b", "a"):
        reg.register(name)(type(name.upper(), (), {}))
    with pytest.raises(KeyError, match=r"unknown thing 'c'; registered: a, b"):
        reg.get("c")
    with pytest.raises(KeyError, match="registered: a, b"):
        reg.create("c")


def test_hook_runs_before_entry_and_can_refuse():
    class Strict(Registry):
        def on_register(self, name, cls):
            if not name.islower():
                raise ValueError(f"{self.kind} {name!r}: lower case only")
            cls.seen = True

    reg = Strict("thing", name_attr="thing_name")
    with pytest.raises(ValueError, match="lower case only"):
        reg.register("Bad")(type("Bad", (), {}))
    assert "Bad" not in reg
    cls = reg.register("good")(type("Good", (), {}))
    assert cls.seen and cls.thing_name == "good"


def test_loss_and_model_registries_are_registries():
    from pycrl.losses import LOSSES, create_loss
    from pycrl.models import BACKBONES, MODELS

    assert all(isinstance(r, Registry) for r in (LOSSES, MODELS, BACKBONES))
    assert create_loss("ce").loss_name == "ce" and "ce" in LOSSES


def test_import_needs_no_torch():
    code = "import sys, pycrl.registry; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
