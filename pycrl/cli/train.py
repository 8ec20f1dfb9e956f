"""``pycrl train``: the training tools (pip install 'pycrl[train]'), as in ``pycrl.train``."""

from __future__ import annotations

import argparse

from pycrl.train.__main__ import DESCRIPTION, EPILOG, add_commands


def register(sub) -> None:
    train = sub.add_parser("train", help="build corpora, train and evaluate detectors (the [train] extra)",
                           description=DESCRIPTION, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(train)
