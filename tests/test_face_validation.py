"""Held-out-identity validation: the bootstrap over people, the H.264 clips and the
model-card record, end to end through pycrl.Detector on a fixture corpus."""

import json

import numpy as np
import pytest

from pycrl.train.face_validation import bootstrap_auc, make_clips

skimage_data = pytest.importorskip("skimage.data")


def test_bootstrap_over_people():
    y = np.array([0, 0, 1, 1] * 5)
    perfect = bootstrap_auc(y, y + 0.1, [f"p{i // 4}" for i in range(20)], rounds=200)
    assert perfect["auc"] == 1.0 and perfect["ci95"] == [1.0, 1.0] and perfect["people"] == 5
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    chance = bootstrap_auc(y, rng.random(400), [f"p{i % 40}" for i in range(400)], rounds=300)
    lo, hi = chance["ci95"]
    assert lo < 0.5 < hi and lo < chance["auc"] < hi
    # ten near-identical samples per person are one piece of evidence, not ten: resampling
    # people gives a wider interval than resampling the samples as if independent
    per_person_y = np.repeat(rng.integers(0, 2, 40), 10)
    per_person_p = np.repeat(rng.random(40), 10) + 0.3 * per_person_y + rng.normal(0, 0.01, 400)
    people = [f"p{i // 10}" for i in range(400)]
    by_people = bootstrap_auc(per_person_y, per_person_p, people, rounds=300)
    by_sample = bootstrap_auc(per_person_y, per_person_p, [str(i) for i in range(400)], rounds=300)
    width = lambda r: r["ci95"][1] - r["ci95"][0]
    assert by_people["auc"] == by_sample["auc"] and width(by_people) > 2 * width(by_sample)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The astronaut twice in one photo (two people for the corpus) and once alone."""
    from PIL import Image

    from pycrl.train.corpus import build_corpus
    from pycrl.train.corpus.sources import Photo, Source

    face = skimage_data.astronaut()
    src = Source("fixture", "pip-sdist", "fixture", "1.0", ("a.png", "b.png"), "public domain")
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(np.concatenate([face, face[:, ::-1]], axis=1)).save(folder / "a.png")
    Image.fromarray(face[:, ::-1].copy()).save(folder / "b.png")
    photos = [Photo(src, m, folder / m, "public domain") for m in src.members]
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(photos, out, progress=False)
    return out


def test_clips_are_h264_pans_with_a_swapped_twin(corpus, tmp_path):
    import av

    clips = make_clips(corpus, "train", tmp_path, frames=8, side=256)
    assert len(clips) == 6 and [c["label"] for c in clips] == [0, 1] * 3
    for real, fake in zip(clips[::2], clips[1::2]):
        with av.open(real["path"]) as a, av.open(fake["path"]) as b:
            assert a.streams.video[0].codec_context.name == "h264"
            fa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
            fb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
        assert len(fa) == len(fb) == 8
        assert not np.array_equal(fa[0], fa[-1])  # the camera moves
        diff = [np.abs(x.astype(int) - y).mean() for x, y in zip(fa, fb)]
        assert min(diff) > 0.5  # every frame of the twin is swapped


def test_bundling_validates_records_and_exports(corpus, tmp_path, monkeypatch):
    """``bundle-model`` (how the default model is made) on a small random CRL: the validation
    report covers every family and the clips, and lands in model.json with the thresholds and
    the corpus's sources; the bundle carries its ONNX graph and no per-machine cache."""
    pytest.importorskip("torch")
    monkeypatch.setenv("PYCRL_CACHE_DIR", str(tmp_path / "cache"))
    import torch

    from pycrl import weights
    from pycrl.models import create_model
    from pycrl.train.__main__ import main

    torch.manual_seed(0)
    model = create_model("crl", encoder="lite", lite_widths=(8, 8, 16, 16, 24, 32, 48), full_view="subpixel")
    weights.save(model.eval(), tmp_path / "run" / "model", {"input_size": [3, 64, 64]})
    out = tmp_path / "bundle"
    # the fixture's two people are both in its training split; 2 draws, 4 frames per clip: a quick check
    assert main(["bundle-model", "--model", str(tmp_path / "run" / "model"), "--faces", str(corpus),
                 "--name", "tiny-faces", "--out", str(out), "--split", "train", "--repeats", "2",
                 "--frames", "4"]) == 0
    assert {p.name for p in out.iterdir()} == {"model.json", "model.safetensors", "model.onnx", "model.onnx.json"}
    report = json.loads((tmp_path / "run" / "validation.json").read_text())
    assert set(report["frame"]) == {"sbi", "swap", "upsample", "all"}
    for fam in ("sbi", "swap", "upsample"):
        r = report["frame"][fam]
        assert r["real"] == r["fake"] == 3 * 2 and r["people"] == 2
        assert r["ci95"][0] <= r["auc"] <= r["ci95"][1]
    assert report["video"]["clips"] == 6 and report["video"]["unscored"] == 0
    points = report["operating_points"]
    assert set(points) == {"eer", "fpr=0.01", "fpr=0.05"}
    stored = json.loads((out / "model.json").read_text())
    assert stored["name"] == "tiny-faces"
    assert stored["decision_threshold"] == pytest.approx(points["eer"]["threshold"])
    assert set(stored["operating_points"]) == {"eer", "fpr=0.01", "fpr=0.05"}
    assert stored["training_data"]["faces"] == 3 and "fixture" in stored["training_data"]["sources"]
    assert stored["validation"]["frame"]["swap"] == report["frame"]["swap"]
    assert main(["bundle-model", "--model", str(out), "--faces", str(corpus), "--name", "x", "--out", str(out)]) == 2


def test_frame_samples_are_the_same_in_every_run(corpus):
    from pycrl.train.face_validation import frame_samples

    a, ya, pa = frame_samples(corpus, "train", "swap", 2, 0)
    b, yb, pb = frame_samples(corpus, "train", "swap", 2, 0)
    assert np.array_equal(a, b) and np.array_equal(ya, yb) and pa == pb
    reals = a[ya == 0]
    assert not np.array_equal(reals[0], reals[3])  # a repeated real is another degraded draw
