"""Photos -> aligned face crops, 68-point landmarks, identities, a split and a manifest.

Faces are found and aligned by ``pycrl.faces.FaceDetector``, the detector inference runs,
at full photo resolution (group photos hold faces of 40-100 px). Each face also gets
dlib's 68 landmarks in crop coordinates (blend masks need the face outline) and a
128-D dlib face descriptor, which groups the same person across photos: two faces are one
identity when their descriptors are closer than ``same_person`` (dlib's 0.6 rule),
merged greedily from the closest pair, never joining two faces of the same photo. Whole
identities go to train or validation, so no person is split between them.

Layout of ``out``::

    crops/<identity>/<source>__<photo>__<k>.png   256x256 aligned crop (scale 1.3)
    crops/<identity>/<source>__<photo>__<k>.npy   (68, 2) float32 landmarks in crop pixels
    photos/<source>/<file>                        the photos themselves (validation clips pan over them)
    manifest.jsonl                                one face per line (see FIELDS)
    summary.json                                  counts per source and split, settings
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pycrl.train.corpus.fetch import sha256
from pycrl.train.corpus.sources import Photo

FIELDS = ("crop", "landmarks", "photo", "identity", "split", "source", "client", "package", "version", "member",
          "photo_sha256", "crop_sha256", "licence", "box", "score", "face_index", "photo_size")


@dataclass(frozen=True)
class BuildSettings:
    size: int = 256  # crop side; training resizes to its own resolution
    scale: float = 1.3  # DeepfakeBench's crop margin
    min_face: int = 32  # smallest face box side kept, pixels
    # HOG keeps every candidate (true faces in full-resolution group photos score from 0.197,
    # the astronaut's mission patch 0.117-0.152 depending on the encoding): no HOG score
    # separates them, so each candidate is confirmed by dlib's CNN face detector instead.
    min_score: float = 0.0
    verify: bool = True  # confirm each HOG face with dlib's MMOD CNN (face-recognition-models)
    max_side: int = 4096  # photos are detected at full resolution up to this side
    same_person: float = 0.6  # dlib descriptor distance under which two faces are one person
    val_fraction: float = 0.25


@dataclass
class _Face:
    photo: Photo
    index: int
    crop: np.ndarray
    landmarks68: np.ndarray
    descriptor: np.ndarray
    box: list[float]
    score: float
    photo_size: list[int]
    photo_sha: str

    @property
    def key(self) -> str:
        return f"{self.photo.source.name}__{Path(self.photo.member).stem}__{self.index}"


def dlib_model(name: str) -> Path:
    """A model file of ``face-recognition-models``: the 68-point, CNN and descriptor models sit
    beside the 5-point one the inference pipeline uses."""
    from pycrl.faces.models import find_landmark_model

    return find_landmark_model().parent / name


LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"


def confirmed_by_cnn(cnn, image: np.ndarray, box, side: int = 120) -> bool:
    """Whether dlib's CNN detector finds a face overlapping ``box`` (IoU >= 0.3) in the region
    around it, rescaled so the box is ``side`` px (the CNN's comfortable size, no upsampling)."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    size = max(x1 - x0, y1 - y0)
    scale = side / size
    out = int(round(2 * side))
    m = np.array([[scale, 0, out / 2 - (x0 + x1) / 2 * scale], [0, scale, out / 2 - (y0 + y1) / 2 * scale]])
    region = cv2.warpAffine(image, m, (out, out), borderMode=cv2.BORDER_CONSTANT)
    ref = np.array([out / 2 - side / 2, out / 2 - side / 2, out / 2 + side / 2, out / 2 + side / 2])
    for det in cnn(region, 0):
        r = det.rect
        a = np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], dtype=np.float64)
        iw = max(0.0, min(a[2], ref[2]) - max(a[0], ref[0]))
        ih = max(0.0, min(a[3], ref[3]) - max(a[1], ref[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + side * side - iw * ih
        if union > 0 and iw * ih / union >= 0.3:
            return True
    return False


def detect_faces(photos: Iterable[Photo], settings: BuildSettings, progress: bool = True) -> list[_Face]:
    import dlib
    from tqdm import tqdm

    from pycrl.faces import FaceDetector
    from pycrl.media.image import load_image

    detector = FaceDetector(mode="all", max_side=settings.max_side, upsample=1, min_score=settings.min_score,
                            size=settings.size, scale=settings.scale, coarse_first=False)
    marker68 = FaceDetector(landmark_model=dlib_model(LANDMARKS_68))
    recogniser = dlib.face_recognition_model_v1(str(dlib_model("dlib_face_recognition_resnet_model_v1.dat")))
    cnn = dlib.cnn_face_detection_model_v1(str(dlib_model("mmod_human_face_detector.dat")))
    faces: list[_Face] = []
    photos = list(photos)
    for photo in tqdm(photos, desc="faces", unit="photo", disable=not progress):
        data = photo.path.read_bytes()
        image, photo_sha = load_image(data), sha256(data)
        boxes = [b for b in detector.detect(image)
                 if min(b.box[2] - b.box[0], b.box[3] - b.box[1]) >= settings.min_face]
        if settings.verify:
            boxes = [b for b in boxes if confirmed_by_cnn(cnn, image, b.box)]
        # left to right, top to bottom: stable face indices whatever the detector's order
        boxes.sort(key=lambda b: (round(float(b.box[1]) / 50), float(b.box[0])))
        for k, box in enumerate(boxes):
            face = detector.align(image, box)
            in_crop = marker68.landmarks(image, box) @ face.matrix[:, :2].T + face.matrix[:, 2]
            x0, y0, x1, y1 = (int(round(v)) for v in box.box)
            rect = dlib.rectangle(x0, y0, x1 - 1, y1 - 1)
            five = dlib.full_object_detection(rect, [dlib.point(int(round(x)), int(round(y)))
                                                     for x, y in face.landmarks])
            desc = np.array(recogniser.compute_face_descriptor(image, five, 1), dtype=np.float64)
            faces.append(_Face(photo, k, face.crop, in_crop.astype(np.float32), desc,
                               [round(float(v), 1) for v in box.box], round(float(box.score), 3),
                               [int(image.shape[1]), int(image.shape[0])], photo_sha))
    return faces


def group_identities(descriptors: np.ndarray, photo_ids: Sequence[str], threshold: float) -> list[int]:
    """Cluster label per face: greedy single linkage under ``threshold``, never merging two
    clusters that hold faces of one photo (one person appears once per photo)."""
    n = len(descriptors)
    parent = list(range(n))
    photos = [{p} for p in photo_ids]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n > 1:
        d = np.linalg.norm(descriptors[:, None] - descriptors[None], axis=-1)
        pairs = sorted((d[i, j], i, j) for i in range(n) for j in range(i + 1, n) if d[i, j] < threshold)
        for _, i, j in pairs:
            a, b = root(i), root(j)
            if a != b and not (photos[a] & photos[b]):
                parent[b] = a
                photos[a] |= photos[b]
    return [root(i) for i in range(n)]


def assign_splits(identities: dict[str, str], val_fraction: float) -> dict[str, str]:
    """``identity -> "train" | "val"``: within each source, identities in the order of a hash of
    their id, the first ``round(n * val_fraction)`` to validation. A source with one identity trains."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    by_source: dict[str, list[str]] = {}
    for ident, source in identities.items():
        by_source.setdefault(source, []).append(ident)
    split = {}
    for idents in by_source.values():
        idents.sort(key=lambda s: hashlib.sha256(s.encode()).hexdigest())
        n_val = int(round(len(idents) * val_fraction)) if len(idents) > 1 else 0
        for i, ident in enumerate(idents):
            split[ident] = "val" if i < n_val else "train"
    return split


def build_corpus(photos: Sequence[Photo], out: Path, settings: BuildSettings = BuildSettings(),
                 progress: bool = True) -> dict:
    """Detect, align, group and write; returns the summary (also written to summary.json)."""
    import cv2

    out = Path(out)
    faces = detect_faces(photos, settings, progress)
    if not faces:
        raise RuntimeError("no face was found in any photo")
    labels = group_identities(np.stack([f.descriptor for f in faces]),
                              [f.photo_sha for f in faces], settings.same_person)
    members: dict[int, list[_Face]] = {}
    for f, lab in zip(faces, labels):
        members.setdefault(lab, []).append(f)
    ident_of: dict[int, str] = {}
    first_source: dict[str, str] = {}
    for lab, group in members.items():
        first = min(group, key=lambda f: f.key)
        ident_of[lab] = first.key.replace("__", "-")
        first_source[ident_of[lab]] = first.photo.source.name
    splits = assign_splits(first_source, settings.val_fraction)

    for photo in {f.photo.path: f.photo for f in faces}.values():
        dest = out / "photos" / photo.source.name / photo.path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(photo.path.read_bytes())
    rows = []
    for f, lab in zip(faces, labels):
        ident = ident_of[lab]
        folder = out / "crops" / ident
        folder.mkdir(parents=True, exist_ok=True)
        crop_path, lm_path = folder / f"{f.key}.png", folder / f"{f.key}.npy"
        ok, png = cv2.imencode(".png", cv2.cvtColor(f.crop, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"could not encode the crop of {f.key}")
        crop_path.write_bytes(png.tobytes())
        np.save(lm_path, f.landmarks68)
        s = f.photo.source
        rows.append({"crop": crop_path.relative_to(out).as_posix(), "landmarks": lm_path.relative_to(out).as_posix(),
                     "photo": f"photos/{f.photo.source.name}/{f.photo.path.name}",
                     "identity": ident, "split": splits[ident], "source": s.name, "client": s.client,
                     "package": s.package, "version": s.version, "member": f.photo.member,
                     "photo_sha256": f.photo_sha, "crop_sha256": sha256(png.tobytes()), "licence": f.photo.licence,
                     "box": f.box, "score": f.score, "face_index": f.index, "photo_size": f.photo_size})
    rows.sort(key=lambda r: str(r["crop"]))
    with open(out / "manifest.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r, sort_keys=True) + "\n")
    summary = summarise(rows)
    summary["settings"] = settings.__dict__
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def summarise(rows: Sequence[dict]) -> dict:
    out: dict = {"faces": len(rows), "identities": len({r["identity"] for r in rows}), "splits": {}, "sources": {}}
    for split in ("train", "val"):
        part = [r for r in rows if r["split"] == split]
        out["splits"][split] = {"faces": len(part), "identities": len({r["identity"] for r in part})}
    for r in rows:
        s = out["sources"].setdefault(r["source"], {"package": r["package"], "version": r["version"],
                                                     "client": r["client"], "faces": 0, "photos": set(),
                                                     "licences": set()})
        s["faces"] += 1
        s["photos"].add(r["member"])
        s["licences"].add(r["licence"])
    for s in out["sources"].values():
        s["photos"], s["licences"] = len(s["photos"]), sorted(s["licences"])
    return out


def read_manifest(root: str | Path, split: str | None = None) -> list[dict]:
    """The manifest's rows (``split`` keeps one split), paths made absolute."""
    root = Path(root)
    path = root / "manifest.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{root} is not a face corpus: no manifest.jsonl (build one with "
                                f"pycrl train build-faces --out {root})")
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if split is None or r["split"] == split:
            for key in ("crop", "landmarks", "photo"):
                r[key] = str(root / r[key])
            rows.append(r)
    return rows
