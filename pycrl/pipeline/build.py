"""Assembling the default stages from a model card and the scoring options."""

from __future__ import annotations

from pycrl import provenance
from pycrl.media.dali import dali_available
from pycrl.model_card import ModelCard
from pycrl.options import (
    Backend,
    CredentialsMode,
    Decoder,
    Device,
    FaceFinder,
    FaceMode,
    Sampling,
    ScoringOptions,
)
from pycrl.pipeline.aggregate import Aggregate
from pycrl.pipeline.decode import DaliDecoder, Decode, MediaDecoder
from pycrl.pipeline.faces import DlibFaces, FaceStage, YuNetFaces
from pycrl.pipeline.run import Pipeline
from pycrl.pipeline.score import ScoreStage
from pycrl.provenance import CredentialsReader
from pycrl.runtime.selection import open_backend


def choose_decoder(options: ScoringOptions) -> Decoder:
    """``auto``: DALI when the device may be CUDA, sampling is uniform and DALI can run
    (it needs a visible CUDA device), else PyAV."""
    if options.decoder != Decoder.AUTO:
        return options.decoder
    if options.device == Device.CPU or options.sampling != Sampling.UNIFORM:
        return Decoder.PYAV
    ok, _ = dali_available()
    return Decoder.DALI if ok else Decoder.PYAV


def build_faces(card: ModelCard, options: ScoringOptions) -> FaceStage:
    """The face stage the options ask for, aligning to ``card``'s crop. YuNet runs on the CPU
    backend the options name when that is ONNX Runtime or OpenVINO, else on the first of those
    that can run here (ONNX Runtime first: faster on this small graph; the network's backend
    may be a GPU one)."""
    if options.face_detector == FaceFinder.DLIB:
        return DlibFaces(mode=options.faces.value, size=card.side, scale=card.crop_scale,
                         min_size=options.face_min_size)
    cpu = options.backend in (Backend.OPENVINO, Backend.ONNXRUNTIME)
    return YuNetFaces(mode=options.faces.value, size=card.side, scale=card.crop_scale,
                      min_size=options.face_min_size, min_score=options.face_min_score,
                      landmarks=options.face_landmarks.value, backend=options.backend.value if cpu else "auto")


def build_pipeline(card: ModelCard, options: ScoringOptions) -> Pipeline:
    """The standard path for ``card``: PyAV or DALI decode, YuNet or dlib faces aligned to the
    card's crop, the chosen backend, the chosen aggregation and threshold."""
    device = {} if options.device == Device.AUTO else {"device": options.device.value}
    net = open_backend(options.backend.value, card.folder, precision=options.precision.value, **device)
    try:
        decoder: Decode
        if choose_decoder(options) == Decoder.DALI:
            on_gpu = "cuda" in str(getattr(net, "device", "")) or net.name == "tensorrt"
            decoder = DaliDecoder(frames=options.frames, limits=options.limits, size=card.side,
                                  device="gpu" if on_gpu else "cpu")
        else:
            decoder = MediaDecoder(frames=options.frames, sampling=options.sampling.value, limits=options.limits)
        faces = build_faces(card, options)
        score = ScoreStage(net, card, batch_size=options.batch_size, heatmap_size=options.heatmap_size)
        decision = card.decision(options.operating_point, options.threshold)
        aggregate = Aggregate(how=options.aggregation.value, decision=decision, model=card.name, backend=net.name,
                              per_person=options.faces == FaceMode.ALL)
    except BaseException:
        net.close()
        raise
    # Inputs in flight, bounded by frames (each input may hold up to `frames` frames' crops),
    # so a large `frames` cannot multiply memory by the worker count.
    window = max(1, min(2 * options.workers, options.prefetch_frames // options.frames))
    credentials = CredentialsReader() if options.content_credentials == CredentialsMode.AUTO \
        and provenance.available() else None
    return Pipeline(decoder, faces, score, aggregate, workers=options.workers, window=window, credentials=credentials)
