"""Training engine: config parsing and overrides, exact resume, best-on-validation selection,
thresholds and the CLI surface. Runs use a very small CRL on 32 px synthetic faces."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from pycrl import weights
from pycrl.train.__main__ import main
from pycrl.train.config import ConfigError, load_config, read_yaml
from pycrl.train.engine import checkpoint as ckpt
from pycrl.train.engine.evaluation import Predictions, better, choose_threshold
from pycrl.train.engine.logs import read_log
from pycrl.train.engine.loop import Trainer

CONFIGS = Path(__file__).resolve().parents[1] / "pycrl" / "train" / "configs"


# -- config ---------------------------------------------------------------------------------

def test_defaults_and_shipped_configs_load():
    assert load_config()["optim"]["lr"] == pytest.approx(2e-4)
    for name in ("recce.yaml", "crl.yaml", "crl_tiny_synthetic.yaml"):
        cfg = load_config(CONFIGS / name)
        assert isinstance(cfg["optim"]["lr"], float)  # "2.0e-4" style values are numbers
    crl = load_config(CONFIGS / "crl.yaml")
    # crl.yaml extends recce.yaml but names another loss: RECCE's arguments are not inherited
    assert crl["loss"]["name"] == "crl" and "recipe" not in crl["loss"]
    assert crl["data"]["resolution"] == 256 and crl["optim"]["weight_decay"] == pytest.approx(1e-5)
    tiny = load_config(CONFIGS / "crl_tiny_synthetic.yaml")
    assert tiny["model"]["encoder"] == "lite" and tiny["model"]["joint_gr"] is True  # from crl.yaml


def test_overrides_are_typed_and_nested():
    cfg = load_config(CONFIGS / "recce.yaml", [
        "optim.lr=1e-3", "train.grad_clip=5", "train.amp=off", "model.num_classes=1",
        "data.test.json=x.json", "data.test.rgb_dir=.", "train.max_steps=null", "threshold.mode=fpr",
        "model.extra=[1, 2]"])
    assert cfg["optim"]["lr"] == 1e-3 and isinstance(cfg["optim"]["lr"], float)
    assert cfg["train"]["grad_clip"] == 5 and cfg["train"]["amp"] is False  # YAML 1.1: off = false
    assert cfg["data"]["test"] == {"json": "x.json", "rgb_dir": "."}
    assert cfg["model"]["extra"] == [1, 2] and cfg["threshold"]["mode"] == "fpr"


def test_renaming_an_open_section_starts_it_afresh():
    cfg = load_config(CONFIGS / "recce.yaml", ["loss.name=ce", "loss.flood=0.1"])
    assert cfg["loss"] == {"name": "ce", "flood": 0.1}
    cfg = load_config(CONFIGS / "recce.yaml", ["loss.name=recce", "loss.margin=2"])  # same name: merged
    assert cfg["loss"]["recipe"] == "paper" and cfg["loss"]["margin"] == 2


@pytest.mark.parametrize("overrides,match", [
    (["optim.lrr=1"], "did you mean 'lr'"),
    (["trian.epochs=1"], "did you mean 'train'"),
    (["epochs"], "dotted.key=value"),
    (["threshold.mode=roc"], "threshold.mode"),
    (["model.name=[1]"], "model.name"),
])
def test_bad_configs_are_rejected(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(CONFIGS / "recce.yaml", overrides)


def test_base_chain_and_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\noptim: {lr: 3.0e-3}\n")
    (tmp_path / "b.yaml").write_text(f"base: {CONFIGS / 'recce.yaml'}\noptim: {{lr: 1.0e-3, weight_decay: 0}}\n")
    cfg = load_config(tmp_path / "a.yaml")
    assert cfg["optim"]["lr"] == 3e-3 and cfg["optim"]["weight_decay"] == 0
    assert cfg["loss"]["recipe"] == "paper"
    (tmp_path / "c.yaml").write_text("base: d.yaml\n")
    (tmp_path / "d.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        read_yaml(tmp_path / "c.yaml")


def test_cli_help_print_config_and_errors(capsys):
    for cmd in ("fit", "evaluate"):
        with pytest.raises(SystemExit) as exit_:
            main([cmd, "--help"])
        assert exit_.value.code == 0
        assert "examples:" in capsys.readouterr().out
    assert main(["fit", "--config", str(CONFIGS / "crl.yaml"), "--print-config", "optim.lr=0.5",
                 "--out", "somewhere"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optim"]["lr"] == 0.5 and printed["output"]["dir"] == "somewhere"
    assert main(["fit", "--config", str(CONFIGS / "crl.yaml"), "optim.typo=1"]) == 2
    assert "did you mean" in capsys.readouterr().err


# -- selection order and thresholds -----------------------------------------------------------

def test_better_knows_which_way_is_up():
    assert better("auc", 0.8, None) and better("auc", 0.9, 0.8) and not better("auc", 0.8, 0.8)
    assert better("eer", 0.1, 0.2) and not better("eer", 0.3, 0.2)
    assert not better("auc", float("nan"), None)


def test_threshold_modes():
    pred = Predictions(np.array([0, 0, 0, 0, 1, 1, 1, 1]),
                       np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]), [str(i) for i in range(8)])
    eer = choose_threshold(pred, {"mode": "eer"})
    # from 0.6 down (prob >= 0.6 is fake) one real of four is called fake and one fake of four
    # (0.4) is missed: FPR = FNR = 0.25; the threshold sits halfway to the next score, 0.4
    assert eer["value"] == pytest.approx(0.5) and eer["chosen_on"] == "val"
    # no real may be called fake: 0.7 is the lowest fake score above every real one (0.6)
    assert choose_threshold(pred, {"mode": "fpr", "target_fpr": 0.0})["value"] == pytest.approx(0.65)
    assert choose_threshold(pred, {"mode": "fpr", "target_fpr": 0.25})["value"] == pytest.approx(0.35)
    assert choose_threshold(pred, {"mode": "fixed", "value": 0.3})["value"] == 0.3
    one_class = Predictions(np.zeros(3, int), np.array([0.1, 0.2, 0.3]), ["a", "b", "c"])
    with pytest.warns(UserWarning):
        assert choose_threshold(one_class, {"mode": "eer"})["value"] == 0.5


# -- data sources ------------------------------------------------------------------------------

def test_data_sources(synth, tmp_path):
    import cv2

    from pycrl.train.__main__ import build_parser
    from pycrl.train.cli_evaluate import source_from_args
    from pycrl.train.engine.data import build_dataset, collate, train_loader

    for label in ("real", "fake"):
        for clip in ("a", "b"):
            (tmp_path / label / clip).mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(tmp_path / label / clip / f"{i:03d}.png"), np.full((20, 20, 3), 40 * i, np.uint8))
    json = synth / "dataset_json" / "Synthetic.json"
    data = {"resolution": 16, "mean": [0.5] * 3, "std": [0.5] * 3, "batch_size": 4, "workers": 0, "cache": True,
            "train": [{"root": str(tmp_path), "frames_per_video": 2},  # type inferred: folder
                      {"json": str(json), "rgb_dir": str(synth), "label_keys": ["Synthetic_FakeSwap"]},
                      {"json": str(json), "rgb_dir": str(synth), "self_blend": True}]}
    ds = build_dataset(data, "train", True, seed=0)
    # folder: 4 clips x 2 frames; swaps: 5 train identities x 2 frames; self-blend: 10 reals + 10 fakes
    assert len(ds) == 8 + 10 + 20
    batch = next(iter(train_loader(ds, data, seed=0, epoch=0)))
    assert batch["image"].shape == (4, 3, 16, 16) and set(batch) == {"image", "label", "video_id", "frame_path"}
    assert collate([ds[0]])["label"].dtype == torch.long
    swaps = build_dataset({**data, "train": data["train"][1]}, "train", True, seed=0)
    assert {r.video_id.split("_")[1] for r in swaps.base.records} == {"FakeSwap"}  # cached wrapper
    with pytest.raises(ValueError, match="match no video"):
        build_dataset({**data, "train": {**data["train"][1], "label_keys": ["Nope"]}}, "train", True, seed=0)
    with pytest.raises(ValueError, match="unknown key"):
        build_dataset({**data, "train": {"root": str(tmp_path), "fram_num": 2}}, "train", True, seed=0)
    with pytest.raises(ValueError, match="set type"):
        build_dataset({**data, "train": {"path": "x"}}, "train", True, seed=0)

    args = build_parser().parse_args(["evaluate", "--model", "m", "--data", str(json), "--frame-num",
                                                "0", "--label-keys", "A", "B", "--self-blend"])
    assert source_from_args(args) == {"type": "deepfakebench", "json": str(json), "split": "test", "frame_num": None,
                                      "rgb_dir": str(synth), "label_keys": ["A", "B"], "self_blend": True}
    args = build_parser().parse_args(["evaluate", "--model", "m", "--data", str(tmp_path)])
    assert source_from_args(args) == {"type": "folder", "root": str(tmp_path), "frames_per_video": 32}


# -- runs -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from pycrl.train.data import SyntheticSpec, write_synthetic_dataset

    out = tmp_path_factory.mktemp("synth")
    write_synthetic_dataset(SyntheticSpec(out=str(out), identities=8, frames_per_id=2, val_identities=2,
                                          test_identities=1, seed=5))
    return out


@pytest.fixture
def torch_globals():
    """Trainer.configure sets threads and deterministic mode process-wide: put them back."""
    from pycrl import _C

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)
    _C.set_num_threads(0)  # the kernels' default (PYCRL_NUM_THREADS or the core count)


def small_config(synth: Path, out: Path, *overrides: str) -> dict:
    """A CRL with a few thousand parameters on 32 px frames; on-the-fly self-blended fakes
    (dataset randomness), dropout and input noise (model randomness) all in play."""
    json = synth / "dataset_json" / "Synthetic.json"
    src = {"type": "deepfakebench", "json": str(json), "rgb_dir": str(synth), "frame_num": None}
    cfg = load_config(CONFIGS / "crl_tiny_synthetic.yaml", [
        "model.lite_widths=[4, 8, 8, 16, 16, 16, 16]", "model.train_noise_std=0.05", "data.resolution=32",
        "data.batch_size=4", "data.eval_batch_size=8", "scheduler.type=step", "scheduler.step_size=3",
        "train.epochs=100", "train.log_every=1", "train.eval_every=null", "train.progress=false",
        "train.select_metric=auc", f"output.dir={out}", *overrides])
    cfg["data"]["train"] = {**src, "split": "train", "self_blend": True}
    cfg["data"]["val"] = {**src, "split": "val"}
    return cfg


def step_losses(run: Path) -> dict:
    return {r["step"]: r["overall"] for r in read_log(run / "log.jsonl", "step")}


def test_resume_gives_the_identical_next_steps(synth, tmp_path, torch_globals):
    # 5 reals x 2 frames + their blends = 20 samples: 5 steps per epoch. Stop mid-epoch 2.
    first = Trainer(small_config(synth, tmp_path / "a", "train.max_steps=7"))
    assert first.steps_per_epoch == 5
    first.fit()
    assert ckpt.read(tmp_path / "a" / "checkpoints" / ckpt.LAST)["progress"]["batch"] == 2
    Trainer(small_config(synth, tmp_path / "a", "train.max_steps=10", "output.resume=auto")).fit()
    Trainer(small_config(synth, tmp_path / "b", "train.max_steps=10")).fit()

    resumed, straight = step_losses(tmp_path / "a"), step_losses(tmp_path / "b")
    assert sorted(resumed) == list(range(1, 11))
    for step in range(1, 11):
        assert resumed[step] == straight[step], f"step {step}: {resumed[step]} != {straight[step]}"
    assert len(set(straight.values())) > 5  # the losses really change from step to step
    a = ckpt.read(tmp_path / "a" / "checkpoints" / ckpt.LAST)["model"]
    b = ckpt.read(tmp_path / "b" / "checkpoints" / ckpt.LAST)["model"]
    for key in b:
        assert torch.equal(a[key], b[key]), key
    assert b["real_centre"].any()  # the EMA centre travels with the checkpoint


def test_refuses_to_overwrite_a_run(synth, tmp_path, torch_globals):
    Trainer(small_config(synth, tmp_path, "train.max_steps=1")).fit()
    with pytest.raises(FileExistsError, match="resume"):
        Trainer(small_config(synth, tmp_path, "train.max_steps=2"))


def test_best_on_validation_selection_and_export(synth, tmp_path, torch_globals):
    cfg = small_config(synth, tmp_path, "train.max_steps=8", "train.eval_every=1", "threshold.mode=fpr",
                       "threshold.target_fpr=0.25")
    cfg["data"]["test"] = {**cfg["data"]["val"], "split": "test"}
    summary = Trainer(cfg).fit()

    evals = read_log(tmp_path / "log.jsonl", "eval")
    val = [e for e in evals if e["split"] == "val"]
    test = [e for e in evals if e["split"] == "test"]
    assert [e["step"] for e in val] == list(range(1, 9))
    best = max(val, key=lambda e: (e["auc"], -e["step"]))  # the first of equal maxima
    assert summary["best"]["step"] == best["step"] and summary["best"]["value"] == best["auc"]
    assert [e["best"] for e in val].count(True) >= 1 and best["best"]
    # the test split is scored once, with the selected weights, after training
    assert len(test) == 1 and test[0]["step"] == best["step"] and evals[-1] is test[0]

    folder = tmp_path / "model"
    meta = weights.read_meta(folder)
    assert meta["architecture"] == "crl" and meta["input_size"] == [3, 32, 32]
    assert meta["mean"] == [0.5, 0.5, 0.5] and meta["std"] == [0.5, 0.5, 0.5]
    assert meta["threshold"]["mode"] == "fpr" and meta["threshold"]["target_fpr"] == 0.25
    assert meta["decision_threshold"] == meta["threshold"]["value"]
    training = meta["provenance"]["training"]
    assert training["metrics"]["val"]["auc"] == best["auc"]
    assert training["metrics"]["test"]["auc"] == pytest.approx(test[0]["auc"])
    assert training["selection"]["step"] == best["step"] and training["steps"] == 8
    assert training["config"]["loss"]["name"] == "crl" and training["data"]["val"]["frames"] == 12
    assert meta["real_centre"]["buffer"] == "real_centre" and "real_centre" in meta["tensors"]["buffers"]

    saved = load_file(str(folder / "model.safetensors"))
    chosen = ckpt.read(tmp_path / "checkpoints" / ckpt.BEST)["model"]
    for key, value in chosen.items():
        assert torch.equal(saved[key], value), key
    model = weights.load(folder)
    assert torch.equal(model.real_centre, chosen["real_centre"]) and model.real_centre.any()
    if best["step"] != 8:  # then the exported weights are not simply the last ones
        last = ckpt.read(tmp_path / "checkpoints" / ckpt.LAST)["model"]
        assert any(not torch.equal(last[k], chosen[k]) for k in chosen)


def test_time_limit_stops_and_still_exports(synth, tmp_path, torch_globals):
    summary = Trainer(small_config(synth, tmp_path, "train.time_limit_minutes=0")).fit()
    assert summary["steps"] == 1  # the limit is checked after each step
    assert (tmp_path / "model" / "model.json").is_file()
    assert not math.isnan(summary["best"]["value"])
