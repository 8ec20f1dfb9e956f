"""What this installation can use, and why not when it cannot.

Every probe is lazy and never raises: a missing library or device becomes a
`Capability` with the reason, so `pycrl info` and the backend chooser can say
exactly what is missing.
"""

from __future__ import annotations

import importlib
import platform
from dataclasses import asdict, dataclass
from types import ModuleType

from pycrl import __version__


@dataclass
class Capability:
    name: str
    usable: bool
    version: str | None
    detail: str  # what it gives, or why it is unusable

    def to_dict(self) -> dict:
        return asdict(self)


def _module_version(module: str) -> tuple[ModuleType | None, str | None, str | None]:
    """(module, version, None), or (None, None, why not) when it cannot be imported."""
    try:
        mod = importlib.import_module(module)
    except Exception as err:  # ImportError, or a broken install raising anything
        return None, None, f"{module} is not importable: {type(err).__name__}: {err}".splitlines()[0]
    return mod, str(getattr(mod, "__version__", "unknown")), None


def kernels() -> Capability:
    try:
        from pycrl import _C
    except ImportError as err:
        return Capability("kernels", False, None, f"pycrl._C is not built ({err}); reinstall with pip install .")
    info = _C.build_info()
    archs = ", ".join(f"sm_{a}" for a in (info["cuda_architectures"] or "").split(",") if a)
    where = (f"CPU + CUDA {info['cuda_version']} kernels ({archs})" if info["cuda"]
             else "CPU kernels only (built without nvcc)")
    return Capability("kernels", True, None, f"{info['compiler']}; {where}; {info['num_threads']} CPU threads")


def cuda() -> Capability:
    try:
        from pycrl import _C
    except ImportError:
        return Capability("cuda", False, None, "pycrl._C is not built")
    status = _C.cuda_available()
    detail = f"{status.device_count} device(s)" if status else status.reason
    return Capability("cuda", bool(status), _C.build_info()["cuda_version"], detail)


def torch_backend() -> Capability:
    mod, version, why = _module_version("torch")
    if mod is None:
        return Capability("torch", False, None, f"{why} (install the [train] extra)")
    return Capability("torch", True, version, f"threads={mod.get_num_threads()}, cuda={mod.cuda.is_available()}")


def openvino_backend() -> Capability:
    mod, version, why = _module_version("openvino")
    if mod is None:
        assert why is not None
        return Capability("openvino", False, None, why)
    try:
        devices = mod.Core().available_devices
    except Exception as err:  # a broken plugin must not break `pycrl info`
        return Capability("openvino", False, version, f"OpenVINO Core failed: {err}")
    return Capability("openvino", True, version, "devices: " + ", ".join(devices))


def onnxruntime_backend() -> Capability:
    mod, version, why = _module_version("onnxruntime")
    if mod is None:
        assert why is not None
        return Capability("onnxruntime", False, None, why)
    return Capability("onnxruntime", True, version, "providers: " + ", ".join(mod.get_available_providers()))


def _gpu() -> Capability:
    """A usable CUDA device, asked of pycrl's CUDA build, or of pycuda when pycrl has none."""
    gpu = cuda()
    if gpu.usable or "built without CUDA" not in gpu.detail:
        return gpu
    try:
        import pycuda.driver as drv

        drv.init()
        n = drv.Device.count()
    except Exception as err:
        return Capability("cuda", False, None, f"no CUDA device visible to pycuda: {err}")
    return Capability("cuda", n > 0, None, f"{n} device(s) (via pycuda)" if n else "pycuda sees no CUDA device")


def tensorrt_backend() -> Capability:
    mod, version, why = _module_version("tensorrt")
    if mod is None:
        return Capability("tensorrt", False, None, f"{why} (install the [gpu] extra on a CUDA machine)")
    if not hasattr(mod, "Builder"):  # e.g. only type stubs are installed
        return Capability("tensorrt", False, version, "the tensorrt package has no runtime (stubs only?)")
    gpu = _gpu()
    if not gpu.usable:
        return Capability("tensorrt", False, version, f"no usable GPU: {gpu.detail}")
    pycuda, _, why = _module_version("pycuda.driver")
    if pycuda is None:
        return Capability("tensorrt", False, version, f"pycuda is needed for buffers and streams: {why}")
    return Capability("tensorrt", True, version, "FP16 engines on " + gpu.detail)


def dali_backend() -> Capability:
    mod, version, why = _module_version("nvidia.dali")
    if mod is None:
        return Capability("dali", False, None, f"{why} (GPU video decode; install the [gpu] extra)")
    gpu = _gpu()
    return Capability("dali", gpu.usable, version, "GPU decode" if gpu.usable else f"CPU ops only: {gpu.detail}")


def _extra(name: str, modules: tuple[str, ...], extra: str, gives: str) -> Capability:
    """An optional feature that needs only its packages importable."""
    found = [_module_version(m) for m in modules]
    missing = [why for mod, _, why in found if mod is None]
    if missing:
        return Capability(name, False, None, f"{missing[0]} (install the [{extra}] extra)")
    return Capability(name, True, found[0][1], gives)


def serve() -> Capability:
    return _extra("serve", ("fastapi", "uvicorn", "prometheus_client"), "serve", "pycrl serve (HTTP API)")


def content_credentials() -> Capability:
    return _extra("c2pa", ("c2pa",), "c2pa", "C2PA content credentials read beside the score")


def ray() -> Capability:
    return _extra("ray", ("ray",), "ray", "pycrl score --ray (Ray Data)")


def report() -> dict:
    """Everything `pycrl info` prints, as one JSON-ready dict."""
    probes = [kernels(), cuda(), openvino_backend(), onnxruntime_backend(), torch_backend(), tensorrt_backend(),
              dali_backend(), serve(), content_credentials(), ray()]
    return {
        "pycrl": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "capabilities": [p.to_dict() for p in probes],
    }
