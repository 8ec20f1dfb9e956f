"""``export_triton``: a model folder as a Triton Inference Server model repository.

    >>> from pycrl.export.triton import export_triton
    >>> repo = export_triton("default", "triton-repo")      # or a model folder
    >>> repo.name, repo.preprocess, repo.net             # ('crl-demo', 'crl-demo_preprocess', 'crl-demo_net')

writes::

    triton-repo/
      README.md                       what each model is, how to serve and call it
      crl-demo/config.pbtxt           ensemble: IMAGE (encoded crops) -> preprocess -> net
      crl-demo/1/                     (empty: Triton wants a version folder)
      crl-demo_preprocess/config.pbtxt, 1/dali.py    DALI: decode, resize, normalise
      crl-demo_net/config.pbtxt, 1/model.onnx        pycrl's cached ONNX export

The graph is the one every pycrl backend runs (:func:`export_onnx`, reused
while current), and every tensor in the configs is read back from it.
Nothing here needs Triton, DALI or a GPU; torch only when the graph is stale.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from pycrl.export.onnx_cache import export_onnx
from pycrl.model_card import ModelCard

from .config import (
    PLATFORMS,
    RepositoryExistsError,
    ServingOptions,
    Signature,
    TritonExportError,
    ensemble_config,
    net_config,
    onnx_signature,
    preprocess_config,
)
from .dali import PIPELINE_FILE, pipeline_source
from .pbtxt import render
from .readme import ReadmeFacts, readme_text

__all__ = ["RepositoryExistsError", "ServingOptions", "TritonExportError", "TritonRepository", "export_triton"]

PathLike = Union[str, "os.PathLike[str]"]
CONFIG = "config.pbtxt"
README = "README.md"
VERSION = "1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class TritonRepository:
    """What ``export_triton`` wrote."""

    root: Path
    name: str            # the ensemble clients call
    preprocess: str      # the DALI model
    net: str             # the network
    signature: Signature
    options: ServingOptions

    @property
    def engine_path(self) -> Optional[Path]:
        """Where the TensorRT engine must be built (None on ONNX Runtime)."""
        if self.options.backend != "tensorrt":
            return None
        return self.root / self.net / VERSION / PLATFORMS["tensorrt"][1]

    def summary(self) -> str:
        outs = ", ".join(o.name for o in self.signature.outputs)
        chw = "x".join(map(str, self.signature.input_chw))
        lines = [f"{self.root}: Triton model repository ({self.options.backend} on {self.options.device})",
                 f"  {self.name}  ensemble: IMAGE (encoded face crops) -> {outs}",
                 f"  {self.preprocess}  DALI: decode, resize, normalise -> {chw} float32",
                 f"  {self.net}  the network"]
        if self.engine_path is not None:
            lines.append(f"  build {self.engine_path} on the serving GPU first (see README.md)")
        return "\n".join(lines)


def triton_name(text: str, *, explicit: bool) -> str:
    """A model name Triton accepts as a folder name: an explicit one is
    checked, one derived from model.json is made safe."""
    if explicit:
        if not _NAME.fullmatch(text):
            raise TritonExportError(f"name {text!r}: use letters, digits, '_', '.' or '-' "
                                    f"(not first), since it names folders")
        return text
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip("_.-")
    return safe or "model"


def _check_destination(root: Path, entries: Tuple[str, ...], overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise TritonExportError(f"{root} exists and is not a folder")
    if overwrite or not root.exists():
        return
    present = sorted(p.name for p in root.iterdir())
    if present:
        clash = [e for e in entries if e in present]
        what = f"it already has {', '.join(clash)}" if clash else f"it holds {len(present)} other entries"
        raise RepositoryExistsError(f"{root} is not empty ({what}); pass overwrite=True (--overwrite) to "
                                    f"replace {', '.join(entries)} there, other entries stay")


def _check_graph(sig: Signature, card: ModelCard, graph: Path) -> None:
    size = card.input_size
    if size != sig.input_chw:
        raise TritonExportError(f"{graph} takes {sig.input_chw} but model.json says input_size {size}: "
                                f"re-export the graph (pycrl export FOLDER --force)")
    if sig.input_chw[0] != 3:
        raise TritonExportError(f"{graph} takes {sig.input_chw[0]} channels; the DALI step makes RGB (3)")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _install(staging: Path, root: Path, entries: Tuple[str, ...]) -> None:
    """Move the staged entries into ``root``, replacing same-named ones (the
    staging folder itself is private, mode 0700: it is never moved as a whole)."""
    root.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        target = root / entry
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        os.replace(staging / entry, target)


def _stage(staging: Path, f: ReadmeFacts, graph: Path, labels: Dict) -> None:
    """Write the three models and the README under ``staging``."""
    sig, opts = f.signature, f.options
    _, height, width = sig.input_chw
    for entry in (f.name, f.preprocess, f.net):  # the ensemble's stays empty, but Triton needs it
        (staging / entry / VERSION).mkdir(parents=True)
    params = {"pycrl_model": f.model_id, "decision_threshold": repr(f.threshold), "labels": json.dumps(labels)}
    _write(staging / f.name / CONFIG,
           render(ensemble_config(f.name, f.preprocess, f.net, sig, opts, params),
                  header=f"{f.model_id}: encoded face crops -> fake probability (pycrl export --format triton)"))
    _write(staging / f.preprocess / CONFIG,
           render(preprocess_config(f.preprocess, sig, opts), header=f"DALI preprocessing of {f.model_id}"))
    _write(staging / f.preprocess / VERSION / PIPELINE_FILE,
           pipeline_source(name=f.name, height=height, width=width, mean=f.mean, std=f.std,
                           max_batch_size=opts.max_batch_size, device=opts.device))
    _write(staging / f.net / CONFIG, render(net_config(f.net, sig, opts), header=f"the {f.model_id} network"))
    # On TensorRT the graph stays next to where the engine goes: trtexec builds from it.
    shutil.copyfile(graph, staging / f.net / VERSION / "model.onnx")
    _write(staging / README, readme_text(f))


def export_triton(model: PathLike, out: PathLike, *, name: Optional[str] = None,
                  backend: str = "onnxruntime", device: str = "gpu", max_batch_size: int = 32,
                  max_queue_delay_us: int = 500, instances: int = 1, overwrite: bool = False,
                  opset: int = 17, force: bool = False) -> TritonRepository:
    """Write a Triton model repository for ``model`` ("default" or a model folder) at ``out``.

    ``backend`` "onnxruntime" serves ``model.onnx``; "tensorrt" writes a
    ``tensorrt_plan`` config and leaves ``model.plan`` to be built on the
    serving GPU (``repo.engine_path``; README.md gives the command).
    ``device`` "gpu" (KIND_GPU, DALI decodes on the GPU) or "cpu".
    ``name`` defaults to the model's name in model.json. ``out`` may exist
    when empty; otherwise ``overwrite`` replaces this export's entries in it.
    ``opset`` and ``force`` go to :func:`export_onnx`.

    Raises TritonExportError (a ValueError) for bad options or a graph Triton
    cannot batch, RepositoryExistsError (also a FileExistsError),
    ModelFolderError for an unknown model, ExportError when no graph can be made.
    """
    opts = ServingOptions(backend=backend, device=device, max_batch_size=max_batch_size,
                          max_queue_delay_us=max_queue_delay_us, instances=instances)
    card = ModelCard.read(os.fspath(model))
    model_id = card.name
    ensemble = triton_name(name if name is not None else model_id, explicit=name is not None)
    preprocess, net = f"{ensemble}_preprocess", f"{ensemble}_net"
    root = Path(out)
    entries = (ensemble, preprocess, net, README)
    _check_destination(root, entries, overwrite)
    graph = export_onnx(card.folder, opset=opset, force=force).path
    sig = onnx_signature(graph)
    _check_graph(sig, card, graph)

    facts = ReadmeFacts(threshold=card.threshold, crop_scale=card.crop_scale,
                        intended_use=card.doc.get("intended_use"), name=ensemble, preprocess=preprocess,
                        net=net, model_id=model_id, signature=sig, options=opts, mean=card.mean, std=card.std)
    root.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then moved in: a failed export leaves the destination as it was.
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        _stage(staging, facts, graph, labels=dict(card.labels))
        _install(staging, root, entries)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return TritonRepository(root, ensemble, preprocess, net, sig, opts)
