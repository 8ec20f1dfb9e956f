"""The README.md written at the root of an exported Triton model repository:
what each model is, what a client sends, how to start Triton, a client."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any, Optional

from .config import DALI_OUTPUT, IMAGE_INPUT, ServingOptions, Signature
from .dali import PIPELINE_FILE

# What the graph outputs mean (see pycrl.export.onnx_io); other names are listed plainly.
OUTPUT_MEANING = {
    "prob": "fake probability per face; `label = fake` when `prob >= decision_threshold`",
    "logits": "classifier logits (real, fake)",
    "feat": "face embedding; pycrl's `compactness` is its squared distance, L2-normalised, "
            "to the model's centre of real faces",
    "recon": "the face as the network reconstructs it, in normalised input space; pycrl's heatmap "
             "is the pooled `|recon - x|`",
}


@dataclass(frozen=True)
class ReadmeFacts:
    name: str                 # the ensemble
    preprocess: str
    net: str
    model_id: str
    signature: Signature
    options: ServingOptions
    mean: Any
    std: Any
    threshold: float
    crop_scale: float
    intended_use: Optional[str]


def _models(f: ReadmeFacts) -> str:
    c, h, w = f.signature.input_chw
    if f.options.backend == "tensorrt":
        net = ("the network on **TensorRT**: `1/model.plan`, an engine **you build on the serving GPU** "
               "from `1/model.onnx` (see below); Triton cannot load this model until it exists")
    else:
        net = "the network on **ONNX Runtime**: `1/model.onnx`, pycrl's exported graph"
    return (
        "| model | what it is |\n|---|---|\n"
        f"| `{f.name}` | **the one to call**: an ensemble, `{IMAGE_INPUT}` → `{f.preprocess}` → `{f.net}` |\n"
        f"| `{f.preprocess}` | DALI: decode → resize to {h}×{w} → `(x/255 − mean)/std` → CHW float32 "
        f"(`{DALI_OUTPUT}`, {c}×{h}×{w}); `1/{PIPELINE_FILE}` is a pipeline definition that Triton's DALI "
        f"backend serialises when it loads the model |\n"
        f"| `{f.net}` | {net} |\n"
    )


def _tensors(f: ReadmeFacts) -> str:
    rows = [(f"| input `{IMAGE_INPUT}` | UINT8 | [-1] | one encoded aligned face crop per row, "
             "zero-padded to the longest row |")]
    for o in f.signature.outputs:
        rows.append(f"| output `{o.name}` | {o.data_type[5:]} | {list(o.dims)} | "
                    f"{OUTPUT_MEANING.get(o.name, 'network output')} |")
    return "| tensor | type | dims per row | meaning |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"


def _fenced(language: str, code: str) -> str:
    """A Markdown code block around dedented ``code``."""
    return f"```{language}\n{textwrap.dedent(code).strip()}\n```\n"


def _serve(f: ReadmeFacts) -> str:
    gpus = "--gpus all " if f.options.device == "gpu" else ""
    backend = "TensorRT" if f.options.backend == "tensorrt" else "ONNX Runtime"
    command = _fenced("bash", f"""
        docker run {gpus}--rm --shm-size=1g -p 8000:8000 -p 8001:8001 -p 8002:8002 \\
          -v "$PWD":/models nvcr.io/nvidia/tritonserver:<yy.mm>-py3 \\
          tritonserver --model-repository=/models
        curl -sf localhost:8000/v2/health/ready && echo ready
    """)
    if f.options.device == "gpu":
        where = ("Every model runs on the GPU (`KIND_GPU`); for a host without a GPU, export again with "
                 "`--triton-device cpu` (DALI then decodes on the CPU) and drop `--gpus all`.")
    else:
        where = "This is the CPU-only variant (`KIND_CPU`; DALI decodes on the CPU): no `--gpus` needed."
    return (f"{command}\nRun it from this folder. The NGC image `nvcr.io/nvidia/tritonserver:<yy.mm>-py3` "
            f"(pick a current release) ships the three backends used here: **dali**, "
            f"**{backend.lower().replace(' ', '')}** ({backend}) and the built-in **ensemble** scheduler; "
            f"slimmer image variants may lack DALI. {where}\n")


def _tensorrt(f: ReadmeFacts) -> str:
    if f.options.backend != "tensorrt":
        return ("For TensorRT instead of ONNX Runtime, export again with `--triton-backend tensorrt`: that "
                "repository's README gives the `trtexec` command that builds the engine on the serving GPU.\n")
    c, h, w = f.signature.input_chw
    m, name = f.options.max_batch_size, f.signature.input.name
    build = _fenced("bash", f"""
        docker run --gpus all --rm -v "$PWD":/models nvcr.io/nvidia/tensorrt:<yy.mm>-py3 \\
          trtexec --onnx=/models/{f.net}/1/model.onnx --saveEngine=/models/{f.net}/1/model.plan \\
          --minShapes={name}:1x{c}x{h}x{w} --optShapes={name}:{max(1, m // 2)}x{c}x{h}x{w} \\
          --maxShapes={name}:{m}x{c}x{h}x{w}
    """)
    return ("A TensorRT engine is specific to the GPU model and the TensorRT version that built it, so pycrl "
            "cannot ship one: build it on the serving GPU with the TensorRT container **of the same `<yy.mm>` "
            f"as the Triton image** (same TensorRT version), from this folder:\n\n{build}\n"
            f"The profile must reach `max_batch_size` ({m}). Adding `--fp16` is usually faster; compare its "
            "scores with pycrl's (`pycrl score --backend onnxruntime`) before serving them.\n")


def _client(f: ReadmeFacts) -> str:
    _, h, _ = f.signature.input_chw
    return _fenced("python", f"""
        import cv2
        import numpy as np
        import tritonclient.grpc as grpcclient          # pip install 'tritonclient[grpc]'
        from pycrl.faces import FaceDetector
        from pycrl.media import load_image

        faces = FaceDetector(size={h}, scale={f.crop_scale})(load_image("photo.jpg"))  # aligned RGB crops
        rows = [cv2.imencode(".png", face.crop[:, :, ::-1])[1].ravel() for face in faces]  # PNG: lossless
        width = max(len(r) for r in rows)
        batch = np.stack([np.pad(r, (0, width - len(r))) for r in rows])  # decoders ignore the zero tail

        client = grpcclient.InferenceServerClient("localhost:8001")
        image = grpcclient.InferInput("{IMAGE_INPUT}", list(batch.shape), "UINT8")
        image.set_data_from_numpy(batch)
        result = client.infer("{f.name}", [image], outputs=[grpcclient.InferRequestedOutput("prob")])
        prob = result.as_numpy("prob")[:, 0]  # one fake probability per face
        print(prob, prob >= {f.threshold!r})
    """)


def readme_text(f: ReadmeFacts) -> str:
    c, h, w = f.signature.input_chw
    use = f"\n> **Intended use:** {f.intended_use}\n" if f.intended_use else ""
    return f"""# Triton model repository for `{f.model_id}`

Written by `pycrl export --format triton`. Clients send encoded face crops to the ensemble `{f.name}`
and get back what pycrl's network computes for them.
{use}
## Models

{_models(f)}
Dynamic batching is on for the preprocessing and the network (up to {f.options.max_batch_size} faces per
run, waiting at most {f.options.max_queue_delay_us} µs to fill a batch): send one face per request or many.

## What the ensemble takes and returns

{_tensors(f)}
Each row of `{IMAGE_INPUT}` is one **aligned face crop**, encoded (PNG keeps the pixels exact; JPEG works
but shifts scores a little): the network was trained on faces aligned by five landmarks at crop scale
{f.crop_scale}, not on whole frames. pycrl's face stage makes these crops:
`pycrl.faces.FaceDetector(size={h}, scale={f.crop_scale})` called on an RGB image (`pycrl.media.load_image`)
or on video frames (`pycrl.media.sample_frames(path, n=32)`; then average the per-frame `prob` of the
largest face, as `pycrl score` does by default). Those crops already have the network's size, so the
DALI step does not resample them; crops of another size are resized to {h}×{w} with DALI's antialiased
linear filter, close to but not bit-identical with pycrl's OpenCV resize. The DALI step normalises with
mean {list(f.mean)} and std {list(f.std)} ({c} RGB channels, pixels on [0, 1]), exactly as pycrl does.

The ensemble's config carries `decision_threshold` ({f.threshold!r}, chosen on validation data) and the
labels as parameters: `client.get_model_config("{f.name}")`.

## Start Triton

{_serve(f)}
## TensorRT

{_tensorrt(f)}
## A client

{_client(f)}
Batches must be rectangular, hence the zero padding; alternatively send one face per request and let the
dynamic batcher group them. Heatmaps and `compactness` are computed client-side from `recon` and `feat`
with `pycrl.ops.recon_diff` and `pycrl.ops.prototype_distance` (against
`pycrl.model_card.ModelCard.read(folder).real_centre()`), as `pycrl.Detector.infer` does.

pycrl's tests parse these configs with Triton's own schema (`tritonclient`'s `model_config_pb2`), check
them against the graph, and run the DALI pipeline on DALI's CPU backend against pycrl's preprocessing;
they do not start Triton.
"""
