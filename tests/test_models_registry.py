import pytest
import torch
import torch.nn as nn

from pycrl.models import (MODELS, Detector, create_backbone, create_model, list_backbones,
                          list_models, register_model)


def test_registered_names():
    assert {"xception", "efficientnetb4", "recce", "classifier"} <= set(list_models())
    assert {"xception", "efficientnet_b4_dfb", "efficientnet_lite0", "tiny"} <= set(
        list_backbones())


def test_unknown_name_lists_choices():
    with pytest.raises(KeyError, match="recce"):
        create_model("no-such-model")


def test_config_is_recorded_with_defaults():
    m = create_model("classifier", backbone="tiny", backbone_cfg={"widths": [4, 8]},
                     num_classes=3)
    assert m.pycrl_config == {"backbone": "tiny", "backbone_cfg": {"widths": [4, 8]},
                              "num_classes": 3, "dropout": 0.0}
    assert type(m).pycrl_name == "classifier"
    # presets record their own arguments, not the base class's
    with torch.device("meta"):  # config only: skip allocating 20 M parameters
        xcp = create_model("xception")
    assert xcp.pycrl_config == {"num_classes": 2, "dropout": 0.0, "in_chans": 3}
    assert MODELS.get("xception").pycrl_name == "xception"


def test_direct_construction_records_config_too():
    from pycrl.models import Recce
    with torch.device("meta"):
        m = Recce(num_classes=1, drop_rate=0.0)
    assert m.pycrl_config["num_classes"] == 1 and m.pycrl_config["drop_rate"] == 0.0


def test_register_new_model_and_duplicate_name():
    @register_model("test-only-linear")
    class Lin(Detector):
        def __init__(self, dim: int = 4):
            super().__init__()
            self.head = nn.Linear(dim, 2)

        def forward(self, x):
            cls = self.head(x)
            return {"cls": cls, "prob": self.probability(cls), "feat": x}

    m = create_model("test-only-linear", dim=5)
    assert m.pycrl_config == {"dim": 5}
    out = m(torch.randn(3, 5))
    assert torch.allclose(out["prob"], torch.softmax(out["cls"], 1)[:, 1])
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-only-linear")(type("Other", (Detector,), {}))
    MODELS._table.pop("test-only-linear")


def test_backbone_registry_builds_backbones():
    b = create_backbone("tiny", widths=(4, 8, 16))
    assert b.stage_names == ["stage1", "stage2", "stage3"] and b.num_features == 16


def test_single_logit_probability_is_sigmoid():
    cls = torch.tensor([[0.3], [-2.0]])
    assert torch.allclose(Detector().probability(cls), torch.sigmoid(cls[:, 0]))
