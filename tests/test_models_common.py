"""Helpers shared by the model/weights test files (no tests of its own).

Import the fixture by name to use it:
    from test_models_common import _one_thread  # autouse
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Run a test single-threaded: these tests use small tensors that gain
    nothing from a second thread, and on a shared 2-core machine OpenMP
    barriers waiting for a descheduled thread made them several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
