"""pycrl.model_card: model.json read once, checked field by field."""

import json
import shutil

import pytest

from pycrl.errors import ModelFolderError, OptionError, PycrlError
from pycrl.model_card import MAX_INPUT_SIDE, Decision, ModelCard
from pycrl.model_folder import resolve


def test_the_default_model_card():
    card = ModelCard.read("default")
    doc = json.loads((resolve("default") / "model.json").read_text())
    assert card.name == doc["name"] and card.architecture == doc["architecture"]
    assert card.input_size == tuple(doc["input_size"]) and card.side == doc["input_size"][-1]
    assert card.threshold == doc["decision_threshold"] and card.decision_point == doc["decision_point"]
    assert dict(card.operating_points) == doc["operating_points"]
    assert card.stores_operating_points
    assert card.decision("fpr=0.01") == Decision("fpr=0.01", doc["operating_points"]["fpr=0.01"])
    assert card.decision() == Decision(doc["decision_point"], doc["decision_threshold"])
    assert card.decision(threshold=0.25) == Decision("custom", 0.25)
    with pytest.raises(OptionError, match="fpr=0.5.*choose from eer"):
        card.decision("fpr=0.5")
    with pytest.raises(OptionError, match="not both"):
        card.decision("eer", threshold=0.25)
    mean, std = card.mean_std()
    assert mean.shape == (1, 3, 1, 1) and std.dtype.name == "float32"
    assert card.real_centre() is not None


def _folder_with(tmp_path, **changes):
    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    doc = {"format": "pycrl-model", "format_version": 1, "architecture": "crl"}
    doc.update(changes)
    doc = {k: v for k, v in doc.items() if v is not ...}
    (folder / "model.json").write_text(json.dumps(doc))
    return folder


def test_defaults_for_a_minimal_card(tmp_path):
    card = ModelCard.read(_folder_with(tmp_path))
    assert card.input_size == (3, 256, 256) and card.mean == (0.5, 0.5, 0.5) and card.crop_scale == 1.3
    assert card.threshold == 0.5 and card.name == "crl:m" and dict(card.labels) == {"0": "real", "1": "fake"}
    assert dict(card.operating_points) == {"threshold": 0.5} and card.real_centre() is None
    # no stored operating points: a point asked for falls back to the single threshold, saying so
    assert not card.stores_operating_points
    fallback = card.decision("fpr=0.01")
    assert (fallback.point, fallback.threshold) == ("threshold", 0.5)
    assert "stores no operating points" in fallback.notice and "'fpr=0.01'" in fallback.notice


@pytest.mark.parametrize("changes, named", [
    (dict(input_size=[3, 100000, 100000]), "input_size must be"),
    (dict(input_size=[3, 64, 32]), "input_size must be"),
    (dict(input_size=[1, 64, 64]), "input_size must be"),
    (dict(input_size="big"), "input_size must be"),
    (dict(input_size=[3, 64.0, 64.0]), "input_size must be"),
    (dict(mean=[0.5, 0.5]), "mean must be a list of 3"),
    (dict(std=[0.5, 0.0, 0.5]), "std must be positive"),
    (dict(decision_threshold="NaN"), "decision_threshold must be a number"),
    (dict(decision_threshold=2.0), "decision_threshold must lie within"),
    (dict(operating_points={"fpr=0.01": 7}), "operating_points"),
    (dict(operating_points=[0.5]), "operating_points must be an object"),
    (dict(crop_scale=0), "crop_scale"),
    (dict(labels="real"), "labels must be an object"),
])
def test_malformed_cards_fail_at_load_naming_the_field(tmp_path, changes, named):
    with pytest.raises(ModelFolderError, match=named) as err:
        ModelCard.read(_folder_with(tmp_path, **changes))
    assert isinstance(err.value, PycrlError) and isinstance(err.value, ValueError)


def test_nan_threshold_in_json_is_refused(tmp_path):
    folder = _folder_with(tmp_path)
    (folder / "model.json").write_text('{"format": "pycrl-model", "architecture": "crl", "decision_threshold": NaN}')
    with pytest.raises(ModelFolderError, match="decision_threshold must be finite"):
        ModelCard.read(folder)


def test_largest_allowed_side_loads(tmp_path):
    assert ModelCard.read(_folder_with(tmp_path, input_size=[3, MAX_INPUT_SIDE, MAX_INPUT_SIDE])).side == MAX_INPUT_SIDE


def test_a_copy_of_the_default_keeps_its_card(tmp_path):
    shutil.copytree(resolve("default"), tmp_path / "copy", ignore=shutil.ignore_patterns("openvino"))
    assert ModelCard.read(tmp_path / "copy").operating_points == ModelCard.read("default").operating_points
