"""Validation on held-out identities of the real-face corpus: what the model card reports.

Every number is measured on faces of people the model never trained on (the corpus's
``val`` split), through the inference engine itself (``pycrl.Detector``: the exported
graph on OpenVINO or ONNX Runtime, as users run it):

* frame AUC of real faces against each fake family, made from the same held-out faces:
  (a) self-blends, (b) identity swaps between two held-out people, (c) generator-like
  upsampling artefacts; each real face is drawn ``repeats`` times with its own fake, and
  every sample, real or fake, goes through upload degradations drawn for it (JPEG, resize,
  H.264, blur, colour: ``UPLOAD_DEGRADATIONS``), so repeated reals are not copies;
* video AUC on short H.264 clips made from the held-out photos: a slow camera pan over
  the person, and its fake twin with the face swapped (by another held-out person) in
  every frame, scored end to end (decode, detection, alignment, batched inference).

The sets are small, so each AUC comes with a 95 % bootstrap interval that resamples
*people* (all samples of a drawn person together), not samples: faces of one person are
not independent evidence.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pycrl.train.data.forgeries import FAMILIES

OPERATING_FPRS = (0.01, 0.05)
# What an upload may have been through before it reaches the detector; milder than the
# training augmentation (no rotation), drawn per sample from the sample's own seed.
UPLOAD_DEGRADATIONS = {"flip_prob": 0.5, "rotate_prob": 0.0, "blur_prob": 0.1, "blur_limit": [3, 5],
                       "brightness_prob": 0.3, "compression_prob": 0.6, "quality_lower": 50,
                       "quality_upper": 95, "downscale_prob": 0.3, "downscale_range": [0.5, 0.9],
                       "h264_prob": 0.3, "h264_crf": [20, 32]}


def bootstrap_auc(labels, scores, groups: Sequence[str], rounds: int = 1000, seed: int = 0) -> dict:
    """AUC and its 95 % percentile interval from resampling ``groups`` (people) with replacement."""
    from sklearn.metrics import roc_auc_score

    y, p = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    g = np.asarray(groups)
    names = np.unique(g)
    members = [np.flatnonzero(g == n) for n in names]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        idx = np.concatenate([members[i] for i in rng.integers(len(names), size=len(names))])
        if len(np.unique(y[idx])) == 2:
            values.append(roc_auc_score(y[idx], p[idx]))
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    lo, hi = (np.percentile(values, [2.5, 97.5]) if values else (float("nan"), float("nan")))
    return {"auc": round(auc, 4), "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "real": int((y == 0).sum()), "fake": int((y == 1).sum()), "people": int(len(names))}


def frame_samples(corpus: Path, split: str, family: str, repeats: int, seed: int):
    """uint8 crops, labels and people of one family's validation set (reals and their fakes,
    each through its own draw of the upload degradations)."""
    import torch

    from pycrl.train.data.augment import build_augmentation
    from pycrl.train.data.face_corpus import FaceCorpusDataset
    from pycrl.train.data.forgeries import ForgeryDataset

    torch.manual_seed(seed)  # samples draw from (seed, epoch, index, torch's initial seed): fix them all
    ds = ForgeryDataset(FaceCorpusDataset(corpus, split, resolution=256, seed=seed), {family: 1.0},
                        repeats=repeats)
    ds.set_epoch(0)
    degrade = build_augmentation(UPLOAD_DEGRADATIONS, 256)
    assert degrade is not None  # a mapping always builds one
    images, labels, people = [], [], []
    for i in range(len(ds)):
        r = ds.raw(i)
        images.append(degrade(image=r["image"], rng=r["rng"])["image"])
        labels.append(r["label"])
        people.append(r["identity"])
    return np.stack(images), np.array(labels), people


def _pan_frames(photo: np.ndarray, box, n: int, out_side: int) -> list[np.ndarray]:
    """A slow pan across the person: a window ~3.2 face widths wide sliding by half a face."""
    import cv2

    x0, y0, x1, y1 = box
    fw = x1 - x0
    side = 3.2 * fw
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    frames = []
    for t in np.linspace(-0.5, 0.5, n):
        wx, wy = cx + t * 0.5 * fw - side / 2, cy + t * 0.2 * fw - side / 2
        scale = out_side / side
        m = np.array([[scale, 0, -wx * scale], [0, scale, -wy * scale]])
        frames.append(cv2.warpAffine(photo, m, (out_side, out_side), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101))
    return frames


def make_clips(corpus: Path, split: str, out: Path, frames: int = 24, side: int = 384, seed: int = 0) -> list[dict]:
    """One real pan clip per held-out face and its fake twin (face swapped in every frame by
    another held-out person, the same swap settings in each frame); returns clip records."""
    from pycrl.faces import FaceDetector
    from pycrl.media.image import load_image
    from pycrl.media.synthetic import write_video
    from pycrl.train.corpus.build import LANDMARKS_68, dlib_model, read_manifest
    from pycrl.train.data.face_swap import swap_face

    rows = read_manifest(corpus, split)
    if len({r["identity"] for r in rows}) < 2:
        raise ValueError("video validation needs held-out faces of at least two people")
    # the swap aligns on the inner 68-point landmarks, as training's swaps do
    finder = FaceDetector(mode="largest", min_score=0.0, landmark_model=dlib_model(LANDMARKS_68))
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for k, row in enumerate(rows):
        photo = load_image(row["photo"])
        pan = _pan_frames(photo, row["box"], frames, side)
        others = [r for r in rows if r["identity"] != row["identity"]]
        donor = others[k % len(others)]
        d_img = load_image(donor["crop"])
        d_lm = np.load(donor["landmarks"]).astype(np.float64)
        swapped = []
        for f in pan:
            boxes = finder.detect(f)
            if not boxes:
                swapped.append(f)  # no face to swap in this frame: it stays real, as a missed swap would
                continue
            fake, _ = swap_face(f, finder.landmarks(f, boxes[0]), d_img, d_lm, np.random.default_rng([seed, k]))
            swapped.append(fake)
        stem = Path(row["crop"]).stem
        for label, clip in ((0, pan), (1, swapped)):
            path = out / f"{stem}_{'real' if label == 0 else 'swap'}.mp4"
            write_video(path, clip, width=side, height=side, rate=12, codec="libx264",
                        options={"crf": "23", "preset": "veryfast"})
            clips.append({"path": str(path), "label": label, "identity": row["identity"]})
    return clips


def validate(model: str | Path, corpus: str | Path, split: str = "val", repeats: int = 6, seed: int = 0,
             clips_dir: str | Path | None = None, frames: int = 16, backend: str = "auto") -> dict:
    """The model card's validation table for one model folder."""
    import pycrl
    from pycrl.train.metrics import eer_threshold, threshold_at_fpr

    corpus = Path(corpus)
    det = pycrl.Detector(model, backend=backend, frames=frames)
    report: dict = {"model": str(model), "split": split, "repeats": repeats, "backend": det.backend,
                    "frame": {}, "video": None}
    all_y: list[np.ndarray] = []
    all_p: list[np.ndarray] = []
    all_people: list[str] = []
    for family in FAMILIES:
        images, y, people = frame_samples(corpus, split, family, repeats, seed)
        p = det.score_batch(images)
        report["frame"][family] = bootstrap_auc(y, p, people, seed=seed)
        keep = np.ones(len(y), bool) if not all_y else y == 1  # the reals once, every family's fakes
        all_y.append(y[keep])
        all_p.append(p[keep])
        all_people += [q for q, k in zip(people, keep) if k]
    y, p = np.concatenate(all_y), np.concatenate(all_p)
    report["frame"]["all"] = bootstrap_auc(y, p, all_people, seed=seed)
    eer, thr = eer_threshold(y, p)
    report["operating_points"] = {"eer": {"threshold": thr, "fpr": eer}}
    for fpr in OPERATING_FPRS:
        report["operating_points"][f"fpr={fpr:g}"] = {"threshold": threshold_at_fpr(y, p, fpr), "fpr": fpr}
    report["operating_points_note"] = (f"from {int((y == 0).sum())} real and {int((y == 1).sum())} fake held-out "
                                       f"crops of {len(set(people))} people: the 1 % point rests on very few reals")
    if clips_dir is not None:
        clips = make_clips(corpus, split, Path(clips_dir), seed=seed)
        results = list(det.score_videos([c["path"] for c in clips]))
        scored = [(c, r) for c, r in zip(clips, results) if r.status == "ok"]
        report["video"] = bootstrap_auc([c["label"] for c, _ in scored], [r.score for _, r in scored],
                                        [c["identity"] for c, _ in scored], seed=seed)
        report["video"]["clips"], report["video"]["unscored"] = len(clips), len(clips) - len(scored)
        report["video"]["frames"] = frames
    return report


def write_report(report: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
