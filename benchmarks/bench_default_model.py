"""The bundled default model against the full CRL (Xception encoder, 256²), side by side:
the network's cost per crop on the default CPU backend (OpenVINO), batch 32.

Run: pytest benchmarks/bench_default_model.py --benchmark-enable
The summary prints crops/s of each and how many times cheaper the default is.
"""

import numpy as np
import pytest
import torch

from pycrl import model_folder, weights
from pycrl.models import create_model
from pycrl.runtime import open_backend
from test_runtime_common import calibrate_batchnorm

BATCH = 32
GROUP = f"default model vs full CRL, OpenVINO, batch {BATCH}"


@pytest.fixture(scope="module")
def full_crl(tmp_path_factory):
    torch.manual_seed(0)
    model = calibrate_batchnorm(create_model("crl", encoder="xception"), size=256)
    folder = tmp_path_factory.mktemp("crl-xception")
    weights.save(model.eval(), folder, {"input_size": [3, 256, 256]})
    return folder


def _case(folder):
    size = int(model_folder.read_json(folder)["input_size"][-1])
    net = open_backend("openvino", folder)
    x = np.random.default_rng(0).uniform(-1, 1, (BATCH, 3, size, size)).astype(np.float32)
    net.run(x)  # compile and warm up
    return net, x, size


@pytest.mark.parametrize("which", ["default", "full-crl"])
def test_network_throughput(benchmark, which, full_crl):
    folder = model_folder.resolve(model_folder.DEFAULT_MODEL) if which == "default" else full_crl
    net, x, size = _case(folder)
    benchmark.group = GROUP
    benchmark.extra_info.update(which=which, size=size)
    benchmark.pedantic(net.run, args=(x,), rounds=5, iterations=1)


def _rates(benchmarks):
    rates = {b.extra_info["which"]: BATCH / b.stats.median for b in benchmarks if b.group == GROUP}
    return rates


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    class Summary:
        def pytest_terminal_summary(self, terminalreporter, config):
            session = getattr(config, "_benchmarksession", None)
            rates = _rates(getattr(session, "benchmarks", None) or [])
            if len(rates) == 2:
                terminalreporter.write_sep("=", GROUP)
                for k, v in rates.items():
                    terminalreporter.write_line(f"{k:>9}: {v:7.1f} crops/s")
                terminalreporter.write_line(f"the default is {rates['default'] / rates['full-crl']:.1f}x cheaper")

    request.config.pluginmanager.register(Summary(), "pycrl-default-model-throughput")
    yield
