import os

import pytest
from hypothesis import settings

from pycrl.ops import cuda_available

# CI explores the same examples on every run, so a red build is reproducible;
# local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_report_header(config):
    from pycrl.ops import build_info

    info = build_info()
    return f"pycrl._C: cuda={info['cuda']} archs={info['cuda_architectures']} threads={info['num_threads']}"


@pytest.fixture
def cuda_device():
    """A CUDA device for the GPU tests, or a skip that says why there is none."""
    torch = pytest.importorskip("torch")
    status = cuda_available()
    if not status:
        pytest.skip(f"CUDA kernels cannot run here: {status.reason}")
    if not torch.cuda.is_available():
        pytest.skip("pycrl sees a GPU but this torch build has no CUDA support")
    return torch.device("cuda")


@pytest.fixture(scope="session")
def synth_task(tmp_path_factory):
    """The synthetic detection task (procedural faces, self-blended fakes; 200 training,
    30 validation and 10 test identities of 2 frames), built once for every learning test."""
    from train_cli import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synth-e2e"))
