"""pycrl training tools: ``python -m train <command>`` (see ``python -m train --help``).

``train.data`` holds the datasets and the synthetic-data generator, ``train.metrics`` the
DeepfakeBench metrics. Commands live one per module (``train/cli_*.py``) and are listed in
``train/__main__.py``.
"""
