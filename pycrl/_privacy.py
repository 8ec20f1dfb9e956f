"""No telemetry: pycrl scores untrusted uploads on hosts that should make no outbound calls.

``import openvino`` imports its model converter (``openvino.tools.ovc``), which starts Intel's
`openvino_telemetry`: without a consent file it creates ``~/intel/`` (a client id, usage
counts) and sends a "general_import" event to Google Analytics, i.e. a DNS lookup and an HTTPS
connection from every process that loads the OpenVINO backend.

The installed openvino_telemetry (2025.2) reads no opt-out environment variable. Its only
switches are the consent file ``~/intel/openvino_telemetry`` (what ``opt_in_out --opt_out``
writes: a write under ~/intel/ itself) and CI detection (``CI=true``, ``TF_BUILD``,
``JENKINS_URL``), which many other tools read too (pip, hypothesis profiles, progress bars).
But each of OpenVINO's call sites (``openvino.tools.ovc``) does ``try: import
openvino_telemetry ... except ImportError:`` and falls back to its bundled no-op stub. So pycrl
makes that import fail, here, before anything can import openvino: ``pycrl/__init__`` imports
this module first, and every process that runs pycrl code imports pycrl (Ray actors and
spawned workers unpickle pycrl objects), so each one gets it.

``PYCRL_ALLOW_TELEMETRY=1`` leaves telemetry as installed. A process that imported openvino
before pycrl has already sent its event; nothing here can take that back.
"""

from __future__ import annotations

import os
import sys

#: The modules blocked; None in sys.modules makes ``import`` raise ImportError.
BLOCKED = ("openvino_telemetry",)


def disable_telemetry() -> None:
    if os.environ.get("PYCRL_ALLOW_TELEMETRY") == "1":
        return
    for name in BLOCKED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None blocks the import


disable_telemetry()
