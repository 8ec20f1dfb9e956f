"""`pycrl.Detector`: media in, calibrated fake scores out.

    det = pycrl.Detector()                  # the bundled default model, or a model folder
    det.score_batch(crops)                  # aligned face crops -> fake probabilities
    det.score_image("photo.jpg")            # -> Result
    for r in det.score_videos(paths):       # streamed in input order; decode, face
        print(r.to_dict())                  # detection and inference overlap

Nothing here imports torch unless backend="torch".
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from pycrl import model_folder, ops
from pycrl.limits import DEFAULT_LIMITS, Limits
from pycrl.model_folder import DEFAULT_MODEL
from pycrl.results import FaceScore, Result, aggregate

SAMPLING = ("uniform", "keyframes")
DECODERS = ("auto", "pyav", "dali")
FACES = ("largest", "all")


@dataclass
class _Prepared:
    """An input after decode, detection and alignment: ready for the network."""

    source: str
    crops: list[np.ndarray] = field(default_factory=list)
    faces: list[FaceScore] = field(default_factory=list)  # scores filled in after inference
    frames_sampled: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    error: BaseException | None = None


class Detector:
    """Scores faces in images and videos with a pycrl model folder.

    model: "default" (the bundled real-face model, see the README's model card) or a model folder.
    backend: "auto" | "openvino" | "onnxruntime" | "torch" | "tensorrt".
    device: "auto" | "cpu" | "cuda".
    frames: frames sampled per video; sampling: "uniform" (evenly spaced over
    the whole video, as DeepfakeBench) or "keyframes" (key frames only: cheap).
    faces: "largest" face per frame (the protocol) or "all".
    aggregation: video score from face scores: "mean" (the protocol), "max", "topk-mean".
    heatmap_size: side of the reconstruction-difference heatmap kept per face (0: none).
    decoder: "pyav" (CPU), "dali" (NVIDIA DALI: GPU decode when device is "cuda", else DALI's
    CPU decoder, which reads VP9/MJPEG but not H.264; uniform sampling only, no rotation
    metadata), or "auto": DALI when the device is CUDA and DALI can run, else PyAV.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        backend: str = "auto",
        device: str = "auto",
        batch_size: int = 32,
        frames: int = 32,
        sampling: str = "uniform",
        faces: str = "largest",
        aggregation: str = "mean",
        threshold: float | None = None,
        precision: str = "auto",
        heatmap_size: int = 0,
        limits: Limits | None = None,
        workers: int = 2,
        decoder: str = "auto",
    ) -> None:
        if sampling not in SAMPLING:
            raise ValueError(f"sampling: expected one of {SAMPLING}, got {sampling!r}")
        if faces not in FACES:
            raise ValueError(f"faces: expected one of {FACES}, got {faces!r}")
        if decoder not in DECODERS:
            raise ValueError(f"decoder: expected one of {DECODERS}, got {decoder!r}")
        if decoder == "dali" and sampling != "uniform":
            raise ValueError("decoder='dali' samples uniformly: use sampling='uniform'")
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda', got {device!r}")
        if batch_size < 1 or frames < 1 or workers < 1 or heatmap_size < 0:
            raise ValueError("batch_size, frames and workers must be >= 1 and heatmap_size >= 0")
        aggregate([0.0], aggregation)  # validates the name now, not on the first video
        self.folder = model_folder.resolve(model)
        self.meta = model_folder.read_json(self.folder)
        self.model_id = str(self.meta.get("name") or self.meta["architecture"] + ":" + self.folder.name)
        size = self.meta.get("input_size", [3, 256, 256])
        self.input_size = int(size[-1])
        self.mean = np.asarray(self.meta.get("mean", [0.5, 0.5, 0.5]), np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(self.meta.get("std", [0.5, 0.5, 0.5]), np.float32).reshape(1, 3, 1, 1)
        self.crop_scale = float(self.meta.get("crop_scale", 1.3))
        self.threshold = float(threshold if threshold is not None else self.meta.get("decision_threshold", 0.5))
        self.centre = model_folder.real_centre(self.folder)
        self.batch_size, self.frames, self.sampling = batch_size, frames, sampling
        self.faces_mode, self.aggregation, self.heatmap_size = faces, aggregation, heatmap_size
        self.limits = limits or DEFAULT_LIMITS
        self.workers = workers
        self.net = _open(backend, device, self.folder, precision)
        self.backend = self.net.name
        self.decoder = _choose_decoder(decoder, device, sampling)
        self._face_detectors: dict[int, object] = {}
        self._dali: dict[int, object] = {}

    # -- network ------------------------------------------------------------

    def prepare(self, faces) -> np.ndarray:
        """Face crops as the network's input: float32 NCHW, normalised.

        Takes uint8 RGB crops (an (N,H,W,3) array or a list of (H,W,3) arrays,
        resized to the model's input size when needed) or a float NCHW array
        already normalised with the model's mean/std.
        """
        s = self.input_size
        if isinstance(faces, np.ndarray) and faces.dtype != np.uint8:
            if faces.ndim != 4 or faces.shape[1:] != (3, s, s):
                raise ValueError(f"faces: expected float (N, 3, {s}, {s}) normalised crops, got {faces.dtype} {faces.shape}")
            return np.ascontiguousarray(faces, dtype=np.float32)
        if isinstance(faces, np.ndarray):
            if faces.ndim == 3:
                faces = faces[None]
            if faces.ndim != 4 or faces.shape[-1] != 3:
                raise ValueError(f"faces: expected uint8 RGB crops (N, H, W, 3), got shape {faces.shape}")
            crops = list(faces)
        elif isinstance(faces, (list, tuple)):
            crops = list(faces)
        else:
            raise TypeError(f"faces: expected a numpy array or a list of arrays, got {type(faces).__name__}")
        out = np.empty((len(crops), 3, s, s), np.float32)
        for i, c in enumerate(crops):
            c = np.asarray(c)
            if c.dtype != np.uint8 or c.ndim != 3 or c.shape[2] != 3:
                raise ValueError(f"faces[{i}]: expected an RGB uint8 (H, W, 3) crop, got {c.dtype} {c.shape}")
            if c.shape[:2] != (s, s):
                c = cv2.resize(c, (s, s), interpolation=cv2.INTER_AREA if c.shape[0] > s else cv2.INTER_LINEAR)
            out[i] = c.transpose(2, 0, 1)
        out /= 255.0
        out -= self.mean
        out /= self.std
        return out

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Network outputs for a prepared batch, plus ``compactness`` (distance to
        the real centre) and ``heatmap`` (pooled |recon - x|) where available."""
        outs: dict[str, list] = {}
        for i in range(0, len(x), self.batch_size):
            for k, v in self.net.run(x[i : i + self.batch_size]).items():
                outs.setdefault(k, []).append(v)
        res = {k: np.concatenate(v) for k, v in outs.items()} if outs else {"prob": np.zeros(0, np.float32)}
        if self.centre is not None and "feat" in res and res["feat"].shape[1] == self.centre.size and len(x):
            res["compactness"] = ops.prototype_distance(np.ascontiguousarray(res["feat"], np.float32), self.centre[None])[0]
        if self.heatmap_size and "recon" in res and len(x):
            recon = np.ascontiguousarray(res["recon"], np.float32)
            side = min(self.heatmap_size, recon.shape[-1])
            res["heatmap"] = ops.recon_diff(x, [recon], pool=side).pooled
        return res

    def score_batch(self, faces) -> np.ndarray:
        """One fake probability per face crop (see `prepare` for the accepted inputs)."""
        return self.infer(self.prepare(faces))["prob"].astype(np.float32)

    # -- media --------------------------------------------------------------

    def _face_detector(self):
        import threading

        key = threading.get_ident()  # dlib objects are not shared between threads
        if key not in self._face_detectors:
            from pycrl.faces import FaceDetector

            self._face_detectors[key] = FaceDetector(mode=self.faces_mode, size=self.input_size, scale=self.crop_scale)
        return self._face_detectors[key]

    def _add_faces(self, item: _Prepared, image: np.ndarray, index: int, t: float) -> None:
        t0 = time.perf_counter()
        for face in self._face_detector()(image):
            x0, y0, x1, y1 = (float(v) for v in face.box)
            item.faces.append(FaceScore(index, float(t), (x0, y0, x1, y1), float("nan"), crop=face.crop))
            item.crops.append(face.crop)
        item.timings["detect"] = item.timings.get("detect", 0.0) + time.perf_counter() - t0

    def _prepare_item(self, source) -> _Prepared:
        from pycrl.media import load_image, media_kind, sample_frames

        item = _Prepared(str(source))
        try:
            t0 = time.perf_counter()
            if media_kind(source) == "image":
                image = load_image(source, self.limits)
                item.timings["decode"] = time.perf_counter() - t0
                item.frames_sampled = 1
                self._add_faces(item, image, 0, 0.0)
            elif self.decoder == "dali":
                self._prepare_dali(item, source)
            else:
                frames = iter(sample_frames(source, n=self.frames, mode=self.sampling, limits=self.limits))
                decode = 0.0
                while True:
                    t1 = time.perf_counter()
                    frame = next(frames, None)
                    decode += time.perf_counter() - t1
                    if frame is None:
                        break
                    item.frames_sampled += 1
                    self._add_faces(item, frame.image, frame.index, frame.time)
                item.timings["decode"] = decode
        except Exception as err:  # one bad input never stops the others
            item.error = err
        return item

    def _prepare_dali(self, item: _Prepared, source) -> None:
        """Decode the sampled frames with DALI (on the GPU when the device is CUDA);
        faces are then found on host copies of those frames only."""
        import threading

        from pycrl.media.dali import DaliVideoBatcher

        key = threading.get_ident()  # a DALI pipeline is fed from one thread
        if key not in self._dali:
            self._dali[key] = DaliVideoBatcher(n=self.frames, batch_size=1, limits=self.limits,
                                               size=self.input_size, device="gpu" if self._on_gpu else "cpu")
        t0 = time.perf_counter()
        batch = self._dali[key].run([source])[0]
        frames, _ = batch.to_numpy()
        item.timings["decode"] = time.perf_counter() - t0
        rate = batch.info.rate or 0.0
        for index, frame in zip(batch.indices, frames):
            item.frames_sampled += 1
            self._add_faces(item, np.ascontiguousarray(frame), int(index), float(index) / rate if rate else 0.0)

    @property
    def _on_gpu(self) -> bool:
        return "cuda" in str(getattr(self.net, "device", "")) or self.backend == "tensorrt"

    def _finish(self, item: _Prepared) -> Result:
        base = dict(source=item.source, threshold=self.threshold, aggregation=self.aggregation,
                    frames_sampled=item.frames_sampled, model=self.model_id, backend=self.backend)
        if item.error is not None:
            return Result.failure(item.error, timings=item.timings, **base)
        if not item.crops:
            return Result(status="no_face", message="no face found in the sampled frames", timings=item.timings, **base)
        try:
            t0 = time.perf_counter()
            out = self.infer(self.prepare(item.crops))
            item.timings["infer"] = time.perf_counter() - t0
        except Exception as err:
            return Result.failure(err, timings=item.timings, **base)
        for i, face in enumerate(item.faces):
            face.score = float(out["prob"][i])
            if "compactness" in out:
                face.compactness = float(out["compactness"][i])
            if "heatmap" in out:
                face.heatmap = out["heatmap"][i]
        # With several faces in a frame, the frame counts as its most suspicious face.
        per_frame: dict[int, float] = {}
        for face in item.faces:
            per_frame[face.frame_index] = max(per_frame.get(face.frame_index, 0.0), face.score)
        score = aggregate(list(per_frame.values()), self.aggregation)
        dists = [f.compactness for f in item.faces if f.compactness is not None]
        return Result(status="ok", score=score, label="fake" if score >= self.threshold else "real",
                      compactness=float(np.mean(dists)) if dists else None, faces=item.faces,
                      timings=item.timings, **base)

    def score_image(self, source) -> Result:
        """Score the faces of one image (path, bytes or RGB array)."""
        return self._finish(self._prepare_item(source))

    def score_video(self, source) -> Result:
        """Score one video: sampled frames, faces, aggregated score."""
        return self._finish(self._prepare_item(source))

    def score_videos(self, sources: Iterable, prefetch: int | None = None) -> Iterator[Result]:
        """Score many inputs (videos or images), yielding results in input order.

        Up to ``prefetch`` inputs are decoded and face-aligned by worker threads
        while the network scores the current one; memory stays bounded by
        that window (frames are never all held, only the aligned crops).
        """
        window = prefetch or 2 * self.workers
        with ThreadPoolExecutor(self.workers, thread_name_prefix="pycrl-prep") as pool:
            pending: deque[Future] = deque()
            it = iter(sources)
            for src in it:
                pending.append(pool.submit(self._timed_prepare, src))
                if len(pending) >= window:
                    yield self._finish(pending.popleft().result())
            while pending:
                yield self._finish(pending.popleft().result())

    def _timed_prepare(self, source) -> _Prepared:
        t0 = time.perf_counter()
        item = self._prepare_item(source)
        item.timings["prepare_wall"] = time.perf_counter() - t0
        return item

    def close(self) -> None:
        self.net.close()

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Detector(model={self.model_id!r}, backend={self.backend!r}, threshold={self.threshold:.3f})"


def _choose_decoder(decoder: str, device: str, sampling: str) -> str:
    if decoder != "auto":
        return decoder
    if device == "cpu" or sampling != "uniform":
        return "pyav"
    from pycrl.media.dali import dali_available

    ok, _ = dali_available()  # needs DALI and a visible CUDA device
    return "dali" if ok and device in ("auto", "cuda") else "pyav"


def _open(backend: str, device: str, folder: Path, precision: str):
    from pycrl.runtime import BackendUnavailable, open_backend

    if device == "cpu" and backend in ("auto", "tensorrt"):
        if backend == "tensorrt":
            raise BackendUnavailable("tensorrt", "TensorRT needs device='cuda'")
        reasons = []
        for name in ("openvino", "onnxruntime", "torch"):
            try:
                return open_backend(name, folder, precision=precision)
            except BackendUnavailable as err:
                reasons.append(f"{name}: {err.reason}")
        raise BackendUnavailable("auto", "no CPU backend can run here (" + "; ".join(reasons) + ")")
    options = {"precision": precision}
    if device == "cuda":
        options["device"] = "cuda"
    return open_backend(backend, folder, **options)
