"""The extension is built as configured: CUDA objects present wherever nvcc is."""

import os
import shutil

import pytest

from pycrl import _C


def nvcc_present() -> bool:
    return bool(os.environ.get("CUDACXX")) or shutil.which("nvcc") is not None


def test_build_info_describes_the_build():
    info = _C.build_info()
    assert info["dtypes"] == ("float32", "float64")
    assert info["num_threads"] >= 1
    assert info["compiler"]
    assert set(info["input_protocols"]) == {"dlpack", "buffer"}


@pytest.mark.skipif(not nvcc_present(), reason="nvcc is not on this machine: a CPU-only build is expected")
def test_cuda_kernels_were_compiled_where_nvcc_exists():
    if os.environ.get("PYCRL_CUDA", "AUTO").upper() == "OFF":
        pytest.skip("PYCRL_CUDA=OFF was requested")
    info = _C.build_info()
    assert info["cuda"], "nvcc is on this machine but pycrl._C was built without its CUDA kernels"
    archs = os.environ.get("PYCRL_CUDA_ARCHITECTURES", "80;90").replace(";", ",")
    assert info["cuda_architectures"] == archs


def test_cuda_available_never_raises_and_explains_itself():
    status = _C.cuda_available()
    assert isinstance(bool(status), bool)
    assert status.reason
    if not status:
        assert status.device_count == 0 or not _C.build_info()["cuda"]
        assert "CudaStatus(available=False" in repr(status)


def test_thread_count_is_configurable():
    _C.set_num_threads(1)
    try:
        assert _C.num_threads() == 1
    finally:
        _C.set_num_threads(0)
    assert _C.num_threads() >= 1
