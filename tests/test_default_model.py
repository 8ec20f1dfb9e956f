"""The bundled default model: what its model card records, and that it tells the bundled
real clip from the self-blended one through the whole pipeline (decode, faces, inference)."""

import pytest

import pycrl
from pycrl.model_folder import ASSETS, DEFAULT_MODEL, NAMED_MODELS, read_json

SAMPLES = ASSETS / "samples"


@pytest.fixture(scope="module")
def card():
    return read_json(NAMED_MODELS[DEFAULT_MODEL])


def test_model_card_records_data_recipe_validation_and_thresholds(card):
    data = card["training_data"]
    assert data["identities"] >= 20 and data["faces"] >= data["identities"]
    assert data["splits"]["val"]["identities"] >= 5
    for name, source in data["sources"].items():
        assert source["package"] and source["version"] and source["faces"] > 0 and source["licences"], name
    recipe = card["provenance"]["training"]["config"]
    assert recipe["data"]["train"]["type"] == "faces" and set(recipe["data"]["train"]["fakes"]) >= {"sbi", "swap"}
    assert recipe["model"]["pretrained"] is True
    frame = card["validation"]["frame"]
    for family in ("sbi", "swap", "upsample"):
        lo, hi = frame[family]["ci95"]
        assert lo <= frame[family]["auc"] <= hi and frame[family]["people"] >= 5
    assert card["validation"]["video"]["clips"] >= 10
    points = card["operating_points"]
    assert set(points) >= {"eer", "fpr=0.01", "fpr=0.05"}
    assert card["decision_threshold"] == pytest.approx(points[card["decision_point"]])
    assert points["fpr=0.01"] >= points["fpr=0.05"]  # a stricter FPR needs a higher threshold


def test_default_is_what_detector_and_cli_use(card):
    det = pycrl.Detector(frames=2)
    assert det.model_id == card.get("name") and det.threshold == pytest.approx(card["decision_threshold"])


def test_bundled_clips_score_real_and_fake():
    det = pycrl.Detector(frames=16)
    real, fake = det.score_videos([SAMPLES / "astronaut_real.mp4", SAMPLES / "astronaut_selfblend.mp4"])
    assert real.status == fake.status == "ok"
    assert real.label == "real" and fake.label == "fake", (real.score, fake.score, det.threshold)
