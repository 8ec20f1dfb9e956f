"""The training engine behind ``pycrl train fit`` and ``pycrl train evaluate``.

- :mod:`.data`       datasets and deterministic loaders from the ``data`` section
- :mod:`.optim`      optimiser and LR schedule
- :mod:`.runtime`    device, AMP, seeding, RNG snapshots
- :mod:`.checkpoint` resumable training state and best weights
- :mod:`.evaluation` scoring, metrics, decision threshold, selection order
- :mod:`.export`     the model folder written at the end
- :mod:`.loop`       :class:`Trainer` tying them together
"""

from pycrl.train.engine.loop import Trainer, fit

__all__ = ["Trainer", "fit"]
