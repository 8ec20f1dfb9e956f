"""pycrl training tools: ``pycrl train <command>`` (see ``pycrl train --help``; installed by
``pip install 'pycrl[train]'``).

``pycrl.train.data`` holds the datasets and the synthetic-data generator, ``pycrl.train.metrics``
the DeepfakeBench metrics, ``configs/`` the shipped configs (``--config crl``). Commands live one
per module (``pycrl/train/cli_*.py``) and are listed in ``pycrl/train/__main__.py``.
"""
