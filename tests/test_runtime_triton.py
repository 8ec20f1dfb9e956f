"""`pycrl export --format triton`: the generated Triton model repository, checked by parsing.

Every config.pbtxt is parsed with Triton's own schema (``tritonclient``'s
``model_config_pb2`` through ``google.protobuf.text_format``) and compared
with ONNX Runtime's view of the copied model.onnx (names, types, dims, and a
real run for the output shapes) and with model.json; the ensemble's steps are
walked tensor by tensor. Where nvidia-dali is installed, the generated DALI
pipeline definition is imported and run on DALI's CPU backend on face crops
made by pycrl's face stage, and its output compared with pycrl's own
preprocessing (``Detector.prepare``).

Triton Inference Server itself cannot run here (no server binary, no
container runtime, no GPU): nothing in this module starts it or sends it a
request, and the GPU ("mixed") decoder is never run.
"""

import importlib.util
import json
import shutil
import uuid

import numpy as np
import pytest

from pycrl import model_folder
from pycrl.cli import main
from pycrl.model_folder import ModelFolderError
from pycrl.export.triton import RepositoryExistsError, TritonExportError, export_triton
from pycrl.export.triton.config import onnx_signature
from pycrl.export.triton.pbtxt import quote

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed: graphs cannot be read")

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


# -- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="module")
def default_folder(tmp_path_factory):
    """A private copy of the bundled default model, registered as "default": exports never
    write into the package, and name resolution is still exercised."""
    folder = tmp_path_factory.mktemp("models") / "default"
    shutil.copytree(model_folder.resolve("default"), folder, ignore=shutil.ignore_patterns("openvino"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(model_folder.NAMED_MODELS, "default", folder)
        mp.setenv("PYCRL_CACHE_DIR", str(folder.parent / "cache"))
        yield folder


@pytest.fixture(scope="module")
def default_repo(default_folder, tmp_path_factory):
    return export_triton("default", tmp_path_factory.mktemp("triton") / "repo", max_batch_size=16)


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """A second model: a tiny registered classifier at 48 px with ImageNet
    normalisation and a name that is not a valid Triton name as it stands."""
    torch = pytest.importorskip("torch", reason="torch not installed: the second model cannot be built")
    from pycrl import weights
    from pycrl.models import create_model
    from pycrl.export import export_onnx

    torch.manual_seed(0)
    model = create_model("classifier", backbone="tiny", backbone_cfg={"widths": [4, 8]}).eval()
    folder = weights.save(model, tmp_path_factory.mktemp("models") / "small",
                          {"input_size": [3, 48, 48], "name": "tiny cls/48", "decision_threshold": 0.3,
                           **IMAGENET})
    export_onnx(folder)
    return folder


@pytest.fixture(scope="module")
def small_cpu_repo(small_folder, tmp_path_factory):
    return export_triton(small_folder, tmp_path_factory.mktemp("triton") / "repo", device="cpu",
                         max_batch_size=5, max_queue_delay_us=0)


@pytest.fixture(scope="module")
def pb2():
    return pytest.importorskip("tritonclient.grpc.model_config_pb2",
                               reason="tritonclient[grpc] not installed: configs not parsed with Triton's schema")


@pytest.fixture(params=["default", "small"])
def case(request):
    """(repository, model folder): the default model on GPU, and the 48 px model on CPU
    (the latter skips where torch cannot build it; the default model needs no torch)."""
    if request.param == "default":
        return request.getfixturevalue("default_repo"), request.getfixturevalue("default_folder")
    return request.getfixturevalue("small_cpu_repo"), request.getfixturevalue("small_folder")


def parse(pb2, path):
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(encoding="utf-8"), pb2.ModelConfig())


def configs(pb2, repo):
    return {m: parse(pb2, repo.root / m / "config.pbtxt") for m in (repo.name, repo.preprocess, repo.net)}


def dtype_name(pb2, value):
    return pb2.DataType.Name(value)


# -- the network --------------------------------------------------------------

ORT_TYPES = {"tensor(float)": "TYPE_FP32"}


def test_net_config_matches_the_graph_and_model_json(pb2, case):
    repo, folder = case
    meta = model_folder.read_json(folder)
    net = parse(pb2, repo.root / repo.net / "config.pbtxt")
    onnx_path = repo.root / repo.net / "1" / "model.onnx"

    # The runtime's cached export, copied as it is.
    assert onnx_path.read_bytes() == (folder / "model.onnx").read_bytes()
    assert net.name == repo.net and net.platform == "onnxruntime_onnx"
    assert net.default_model_filename == "model.onnx"
    assert net.max_batch_size == repo.options.max_batch_size

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (graph_in,) = session.get_inputs()
    (cfg_in,) = net.input
    assert cfg_in.name == graph_in.name == "image"
    assert dtype_name(pb2, cfg_in.data_type) == ORT_TYPES[graph_in.type]
    assert list(cfg_in.dims) == list(graph_in.shape[1:]) == meta["input_size"]
    assert not cfg_in.HasField("reshape")

    graph_outs = session.get_outputs()
    assert [o.name for o in net.output] == [o.name for o in graph_outs]
    assert {"prob", "logits", "feat"} <= {o.name for o in net.output}
    for cfg, graph in zip(net.output, graph_outs):
        assert dtype_name(pb2, cfg.data_type) == ORT_TYPES[graph.type], cfg.name
        if len(graph.shape) == 1:  # (batch,): served as [1], reshaped back for the backend
            assert list(cfg.dims) == [1] and cfg.HasField("reshape") and list(cfg.reshape.shape) == []
        else:
            assert list(cfg.dims) == list(graph.shape[1:]) and not cfg.HasField("reshape"), cfg.name

    # The declared dims are what the graph really produces.
    batch = np.random.default_rng(0).standard_normal((3, *cfg_in.dims)).astype(np.float32)
    produced = dict(zip([o.name for o in graph_outs], session.run(None, {cfg_in.name: batch})))
    for cfg in net.output:
        shape = list(cfg.reshape.shape) if cfg.HasField("reshape") else list(cfg.dims)
        assert list(produced[cfg.name].shape) == [3, *shape], cfg.name

    batching = net.dynamic_batching
    assert list(batching.preferred_batch_size) == sorted(batching.preferred_batch_size)
    assert 1 <= batching.preferred_batch_size[0] and batching.preferred_batch_size[-1] == net.max_batch_size
    assert batching.max_queue_delay_microseconds == repo.options.max_queue_delay_us
    kind = "KIND_GPU" if repo.options.device == "gpu" else "KIND_CPU"
    assert [pb2.ModelInstanceGroup.Kind.Name(g.kind) for g in net.instance_group] == [kind]


def test_preprocess_config_feeds_the_network(pb2, case):
    repo, _ = case
    cfg = configs(pb2, repo)
    pre, net = cfg[repo.preprocess], cfg[repo.net]
    assert pre.name == repo.preprocess and pre.backend == "dali" and not pre.platform
    assert pre.max_batch_size == net.max_batch_size
    (image,) = pre.input
    assert image.name == "IMAGE" and dtype_name(pb2, image.data_type) == "TYPE_UINT8"
    assert list(image.dims) == [-1] and image.allow_ragged_batch
    (out,) = pre.output
    assert out.data_type == net.input[0].data_type and list(out.dims) == list(net.input[0].dims)
    assert pre.instance_group[0].kind == net.instance_group[0].kind
    assert (repo.root / repo.preprocess / "1" / "dali.py").is_file()


def test_ensemble_steps_connect_existing_tensors(pb2, case):
    """Walk the ensemble as Triton schedules it: every step input must be an
    ensemble tensor already produced, with the dtype and dims the step's model
    declares; every ensemble output must be produced, with matching dtype/dims."""
    repo, _ = case
    cfg = configs(pb2, repo)
    ens = cfg[repo.name]
    assert ens.platform == "ensemble" and ens.max_batch_size == repo.options.max_batch_size
    assert (repo.root / repo.name / "1").is_dir()  # Triton requires a version folder
    tensors = {i.name: (i.data_type, list(i.dims)) for i in ens.input}
    steps = ens.ensemble_scheduling.step
    assert [s.model_name for s in steps] == [repo.preprocess, repo.net]
    for step in steps:
        model = cfg[step.model_name]
        assert step.model_version == -1
        declared_in = {i.name: (i.data_type, list(i.dims)) for i in model.input}
        assert set(step.input_map) == set(declared_in), step.model_name  # every input assigned
        for model_input, tensor in step.input_map.items():
            assert tensors[tensor] == declared_in[model_input], (step.model_name, model_input)
        declared_out = {o.name: (o.data_type, list(o.dims)) for o in model.output}
        for model_output, tensor in step.output_map.items():
            assert tensor not in tensors, f"{tensor} produced twice"
            tensors[tensor] = declared_out[model_output]
    for out in ens.output:
        assert tensors[out.name] == (out.data_type, list(out.dims)), out.name
    assert [o.name for o in ens.output] == [o.name for o in cfg[repo.net].output]


def test_ensemble_parameters_carry_model_json(pb2, case):
    repo, folder = case
    meta = model_folder.read_json(folder)
    ens = parse(pb2, repo.root / repo.name / "config.pbtxt")
    params = {k: v.string_value for k, v in ens.parameters.items()}
    assert float(params["decision_threshold"]) == meta["decision_threshold"]
    assert json.loads(params["labels"]) == meta["labels"] and params["pycrl_model"] == meta["name"]


def test_names_come_from_model_json_made_safe(default_repo, small_cpu_repo):
    assert default_repo.name == "crl-faces"
    # "tiny cls/48" names no folder: made safe.
    assert small_cpu_repo.name == "tiny_cls_48"
    assert sorted(p.name for p in small_cpu_repo.root.iterdir()) == [
        "README.md", "tiny_cls_48", "tiny_cls_48_net", "tiny_cls_48_preprocess"]


def test_text_format_strings_survive_parsing(pb2):
    from google.protobuf import text_format

    name = 'a "quoted" back\\slash,\ttab, newline\n and ünïcode'
    cfg = text_format.Parse(f"name: {quote(name)}", pb2.ModelConfig())
    assert cfg.name == name


# -- the DALI pipeline --------------------------------------------------------

@pytest.fixture(scope="module")
def dali():
    return pytest.importorskip("nvidia.dali", reason="nvidia-dali not installed (pip install nvidia-dali-cuda120): "
                                                     "the generated pipeline is not run")


@pytest.fixture(scope="module")
def frame():
    from pycrl.media import sample_frames

    sample = model_folder.ASSETS / "samples" / "astronaut_real.mp4"
    return next(iter(sample_frames(sample, n=1))).image


def face_crop(frame, size):
    from pycrl.faces import FaceDetector

    (face,) = FaceDetector(size=size)(frame)
    return face.crop


def load_pipeline_module(repo):
    path = repo.root / repo.preprocess / "1" / "dali.py"
    spec = importlib.util.spec_from_file_location(f"triton_dali_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cpu(module, rows, **overrides):
    """The generated pipeline function with only the decoder moved to the CPU."""
    pipe = module.pipeline(decode_device="cpu", device_id=None, batch_size=len(rows), num_threads=1,
                           prefetch_queue_depth=1, **overrides)
    pipe.build()
    pipe.feed_input("IMAGE", list(rows))
    (out,) = pipe.run()
    return np.stack([np.asarray(t) for t in out])


def encode(crop, ext=".png"):
    import cv2

    ok, buf = cv2.imencode(ext, np.ascontiguousarray(crop[:, :, ::-1]))  # OpenCV writes BGR
    assert ok
    return buf.ravel()


def padded(rows):
    """A rectangular client batch: each row zero-padded to the longest."""
    width = max(len(r) for r in rows)
    return [np.pad(r, (0, width - len(r))) for r in rows]


def reference(folder, crops):
    """pycrl's own preprocessing of uint8 RGB crops."""
    from pycrl import Detector

    det = Detector(folder, backend="onnxruntime")
    try:
        return det.prepare(list(crops))
    finally:
        det.net.close()


def test_dali_pipeline_equals_pycrl_preprocessing(dali, default_repo, default_folder, frame):
    from pycrl.media import load_image

    module = load_pipeline_module(default_repo)
    # As served: GPU decode, the model's size and normalisation.
    assert module.DECODE_DEVICE == "mixed" and module.DEVICE_ID == 0
    assert (module.HEIGHT, module.WIDTH) == (128, 128) and module.MAX_BATCH_SIZE == 16
    crop = face_crop(frame, 128)
    flipped = np.ascontiguousarray(crop[:, ::-1])
    jpeg = encode(crop, ".jpg")
    rows = [encode(crop), encode(flipped), jpeg]
    got = run_cpu(module, padded(rows))
    assert got.shape == (3, 3, 128, 128) and got.dtype == np.float32
    # Lossless rows against the crops; the JPEG row against pycrl's decode of the same bytes.
    expected = reference(default_folder, [crop, flipped, load_image(jpeg.tobytes())])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.ptp(got[0]) > 1.0  # a real face, not a flat image


def test_dali_pipeline_resizes_other_crop_sizes_close_to_pycrl(dali, default_repo, default_folder, frame):
    module = load_pipeline_module(default_repo)
    crops = [face_crop(frame, 96), face_crop(frame, 200)]  # up- and downscaled on the way in
    got = run_cpu(module, padded([encode(c) for c in crops]))
    expected = reference(default_folder, crops)
    grey = np.abs(got - expected) * 0.5 * 255  # std 0.5: back to grey levels
    # Upscaling is the same bilinear filter; shrinking uses DALI's antialiased
    # linear filter against OpenCV's INTER_AREA: close, not identical.
    assert grey[0].max() <= 1.5 and grey[0].mean() <= 0.5
    assert grey[1].mean() <= 2.0


def test_cpu_variant_autoserialises_and_normalises_with_model_json(dali, small_cpu_repo, small_folder, frame):
    from nvidia.dali._utils.autoserialize import invoke_autoserialize

    module = load_pipeline_module(small_cpu_repo)
    assert module.DECODE_DEVICE == "cpu" and module.DEVICE_ID is None
    assert module.MEAN == IMAGENET["mean"] and module.STD == IMAGENET["std"]
    # What Triton's DALI backend does with the file on a CPU-only host.
    target = small_cpu_repo.root / "serialised.dali"
    invoke_autoserialize(module, str(target))
    assert target.stat().st_size > 0
    crop = face_crop(frame, 48)
    got = run_cpu(module, [encode(crop)])
    assert got.shape == (1, 3, 48, 48)
    np.testing.assert_allclose(got, reference(small_folder, [crop]), rtol=0, atol=1e-5)


# -- options, TensorRT, errors --------------------------------------------------

def test_tensorrt_config_expects_an_engine_built_on_the_serving_gpu(pb2, default_folder, tmp_path):
    repo = export_triton(default_folder, tmp_path / "repo", backend="tensorrt", max_batch_size=8)
    net = parse(pb2, tmp_path / "repo" / repo.net / "config.pbtxt")
    assert net.platform == "tensorrt_plan" and net.default_model_filename == "model.plan"
    assert pb2.ModelInstanceGroup.Kind.Name(net.instance_group[0].kind) == "KIND_GPU"
    assert repo.engine_path == tmp_path / "repo" / repo.net / "1" / "model.plan"
    assert not repo.engine_path.exists()  # cannot be built here
    assert (repo.engine_path.parent / "model.onnx").is_file()  # what trtexec builds it from
    readme = (tmp_path / "repo" / "README.md").read_text()
    assert f"--onnx=/models/{repo.net}/1/model.onnx" in readme
    assert "--maxShapes=image:8x3x128x128" in readme and "model.plan" in repo.summary()


def test_readme_explains_serving_and_the_client(default_repo):
    text = (default_repo.root / "README.md").read_text()
    for needle in ("docker run --gpus all", "nvcr.io/nvidia/tritonserver", "--model-repository=/models",
                   "tritonclient.grpc", 'client.infer("crl-faces"', "FaceDetector(size=128, scale=1.3)",
                   "dali", "onnxruntime", "ensemble", "| output `recon` | FP32 | [3, 128, 128] |"):
        assert needle in text, needle


def test_destination_rules(default_folder, tmp_path):
    root = tmp_path / "repo"
    (root / "other_model").mkdir(parents=True)
    with pytest.raises(RepositoryExistsError, match="--overwrite") as err:
        export_triton(default_folder, root)
    assert isinstance(err.value, FileExistsError)
    assert sorted(p.name for p in root.iterdir()) == ["other_model"]  # nothing written

    export_triton(default_folder, root, overwrite=True)
    (root / "crl-faces_net" / "stale.txt").write_text("from an older export")
    export_triton(default_folder, root, overwrite=True, device="cpu")
    assert not (root / "crl-faces_net" / "stale.txt").exists()  # our entries replaced...
    assert (root / "other_model").is_dir()                     # ...others kept
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind

    (tmp_path / "file").write_text("")
    with pytest.raises(TritonExportError, match="not a folder"):
        export_triton(default_folder, tmp_path / "file")


@pytest.mark.parametrize("kwargs, match", [
    ({"backend": "tensorrt", "device": "cpu"}, "GPUs only"),
    ({"backend": "tvm"}, "backend"),
    ({"device": "tpu"}, "device"),
    ({"max_batch_size": 0}, "max_batch_size"),
    ({"name": "../escape"}, "names folders"),
])
def test_bad_options_raise_before_anything_is_written(default_folder, tmp_path, kwargs, match):
    with pytest.raises(TritonExportError, match=match):
        export_triton(default_folder, tmp_path / "repo", **kwargs)
    assert not (tmp_path / "repo").exists()


def test_unknown_model(tmp_path):
    with pytest.raises(ModelFolderError, match="not a pycrl model folder"):
        export_triton(tmp_path / "nowhere", tmp_path / "repo")


def test_a_graph_with_a_fixed_batch_is_refused(small_folder, tmp_path):
    from pycrl.export import export_onnx

    fixed = export_onnx(small_folder, tmp_path / "fixed.onnx", batch_dynamic=False)
    with pytest.raises(TritonExportError, match="fixed batch of 1"):
        onnx_signature(fixed.path)


# -- the command line -----------------------------------------------------------

def test_cli_export_triton(default_folder, tmp_path, capsys):
    out = tmp_path / "repo"
    assert main(["export", "default", "--format", "triton", "--out", str(out), "--max-batch-size", "4",
                 "--triton-device", "cpu"]) == 0
    assert "crl-faces_preprocess" in capsys.readouterr().out
    assert (out / "crl-faces_net" / "1" / "model.onnx").is_file()
    assert "max_batch_size: 4" in (out / "crl-faces_net" / "config.pbtxt").read_text()
    assert "KIND_CPU" in (out / "crl-faces_preprocess" / "config.pbtxt").read_text()

    assert main(["export", "default", "--format", "triton", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", "default", "--format", "triton", "--out", str(out), "--overwrite",
                 "--name", "served"]) == 0
    assert (out / "served" / "config.pbtxt").is_file()

    assert main(["export", "default", "--format", "triton"]) == 2  # no --out
    assert "needs --out" in capsys.readouterr().err
    assert main(["export", str(default_folder), "--overwrite"]) == 2  # a triton option on the onnx format
    assert "--format triton only" in capsys.readouterr().err
    assert main(["export", "nowhere", "--format", "triton", "--out", str(tmp_path / "x")]) == 2


def test_cli_help_teaches_the_triton_format(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = capsys.readouterr().out
    for needle in ("--format {onnx,triton}", "--triton-backend", "NAME_preprocess", "ensemble",
                   "pycrl export default --format triton --out triton-repo"):
        assert needle in text, needle


def test_serving_through_triton_is_not_tested_here():
    pytest.skip("Triton Inference Server cannot be started here (no tritonserver binary, no container "
                "runtime, no GPU): the repository is checked by parsing its configs against Triton's schema "
                "and running the DALI pipeline on DALI's CPU backend, not by serving it")
