"""Label keys to integers, as DeepfakeBench's ``label_dict`` does (real = 0, fake = 1)."""

from __future__ import annotations

from collections.abc import Mapping

from pycrl.train.data.errors import UnknownLabelError

# The keys of DeepfakeBench's test_config.yaml label_dict named in our design notes.
DEFAULT_LABEL_DICT: dict[str, int] = {
    "FF-real": 0, "FF-DF": 1, "FF-F2F": 1, "FF-FS": 1, "FF-NT": 1, "FF-FH": 1,
    "DFD_real": 0, "DFD_fake": 1,
    "CelebDFv1_real": 0, "CelebDFv1_fake": 1, "CelebDFv2_real": 0, "CelebDFv2_fake": 1,
    "DFDC_Real": 0, "DFDC_Fake": 1,
    "DFDCP_Real": 0, "DFDCP_FakeA": 1, "DFDCP_FakeB": 1,
    "DF_real": 0, "DF_fake": 1,
    "UADFV_Real": 0, "UADFV_Fake": 1,
    "roop_Real": 0, "roop_Fake": 1,
}


def resolve_label(key: str, label_dict: Mapping[str, int] | None = None, infer: bool = True) -> int:
    """The integer label of ``key``: from ``label_dict`` (over the defaults), else by its name.

    With ``infer``, a key containing 'real' (any case) is 0 and one containing 'fake' is 1,
    which covers custom datasets named like DeepfakeBench's. Anything else raises
    :class:`UnknownLabelError` naming the key.
    """
    table = {**DEFAULT_LABEL_DICT, **(label_dict or {})}
    if key in table:
        value = int(table[key])
        if value not in (0, 1):
            raise ValueError(f"label_dict[{key!r}] = {value}; labels must be 0 (real) or 1 (fake)")
        return value
    lowered = key.lower()
    if infer and ("real" in lowered) != ("fake" in lowered):
        return 0 if "real" in lowered else 1
    raise UnknownLabelError(key, list(table))
