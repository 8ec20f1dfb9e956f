"""Content credentials (C2PA) read beside the pixels, never mixed into the score.

With ``c2pa-python`` installed (``pip install 'pycrl[c2pa]'``), each input file's C2PA manifest
store is read and validated: the record's ``content_credentials`` then says whether a manifest
is there, whether it validates, which tool made the claim, who signed it, and what the content
declares about itself (IPTC ``digitalSourceType``: captured, edited, AI-generated, ...). The
verdict stays the model's: a valid manifest is evidence for a reviewer, not a proof of
authenticity, and a stripped one proves nothing either.

No network is touched: remote manifests and OCSP are not fetched.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from pycrl.fileio import open_regular

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: What an IPTC digital source type declares, in a reviewer's words.
DECLARES = {
    "trainedAlgorithmicMedia": "ai-generated",
    "algorithmicMedia": "ai-generated",
    "compositeSynthetic": "ai-generated",
    "compositeWithTrainedAlgorithmicMedia": "ai-edited",
    "algorithmicallyEnhanced": "ai-edited",
    "humanEdits": "edited",
    "composite": "edited",
    "digitalCapture": "captured",
    "computationalCapture": "captured",
    "compositeCapture": "captured",
    "negativeFilm": "captured",
    "positiveFilm": "captured",
    "print": "captured",
    "screenCapture": "captured",
    "virtualRecording": "captured",
    "digitalCreation": "created",
    "dataDrivenMedia": "created",
}
#: When several actions declare different things, the one a reviewer most needs to know wins.
_RANK = ("ai-generated", "ai-edited", "edited", "created", "captured")

#: The media types c2pa reads, by their first bytes.
_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF8", "image/gif"),
          (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))
#: Validating a manifest hashes the whole file: larger files are skipped (``state="skipped"``).
MAX_BYTES = 1 << 30
_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


@dataclass
class Credentials:
    """What an input's C2PA manifest says. ``state``: ``absent`` (no manifest), ``valid``
    (signature and hashes check; the signer is not on a trust list), ``trusted`` (and the
    signer is), ``invalid`` (the manifest does not match the content or its signature fails:
    the file was changed after signing), ``unsupported`` (a format c2pa does not read),
    ``error`` (the manifest could not be parsed), ``skipped`` (a file too large to hash)."""

    state: str
    claim_generator: str | None = None
    signer: str | None = None
    declares: str | None = None  # ai-generated | ai-edited | edited | created | captured
    digital_source_types: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # validation failure codes
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def available() -> bool:
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


def _media_type(head: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"mif1"):
            return "image/heic"
        if brand == b"avif":
            return "image/avif"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    return None


class CredentialsReader:
    """Reads one input's content credentials (a path or bytes; arrays have none)."""

    def __init__(self) -> None:
        import c2pa

        self._c2pa = c2pa

    def __call__(self, source: Any) -> Credentials | None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return self._read(io.BytesIO(bytes(source)))
        if isinstance(source, (str, os.PathLike)):
            with open_regular(source, OSError) as fh:
                if os.fstat(fh.fileno()).st_size > MAX_BYTES:
                    return Credentials("skipped", message=f"larger than {MAX_BYTES >> 20} MiB: its manifest "
                                                          "would be validated by hashing all of it")
                return self._read(fh)
        return None

    def _read(self, stream) -> Credentials:
        c2pa = self._c2pa
        head = stream.read(16)
        stream.seek(0)
        kind = _media_type(head)
        if kind is None:
            return Credentials("unsupported", message="a format C2PA manifests are not read from")
        context = c2pa.Context(settings=c2pa.Settings.from_dict(_SETTINGS))
        try:
            with c2pa.Reader(kind, stream, context=context) as reader:
                state = (reader.get_validation_state() or "").lower()
                results = reader.get_validation_results() or {}
                manifest = reader.get_active_manifest() or {}
        except Exception as err:  # c2pa's own error classes: ManifestNotFound, NotSupported, ...
            name = type(err).__name__.lstrip("_")
            if "ManifestNotFound" in name:
                return Credentials("absent")
            if "NotSupported" in name:
                return Credentials("unsupported", message=str(err)[:200])
            return Credentials("error", message=f"{name}: {str(err)[:200]}")
        failures = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
        return Credentials(state if state in ("valid", "trusted", "invalid") else "invalid" if failures else state,
                           claim_generator=_generator(manifest), signer=_signer(manifest),
                           **_declared(manifest), failures=failures)


def _generator(manifest: dict) -> str | None:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict) and info[0].get("name"):
        first = info[0]
        return f"{first['name']} {first.get('version', '')}".strip()
    return manifest.get("claim_generator")


def _signer(manifest: dict) -> str | None:
    sig = manifest.get("signature_info") or {}
    names = [sig.get("common_name"), sig.get("issuer")]
    return " / ".join(str(n) for n in names if n) or None


def _declared(manifest: dict) -> dict[str, Any]:
    types, actions = [], []
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            actions.append(str(action.get("action", "")))
            if action.get("digitalSourceType"):
                types.append(str(action["digitalSourceType"]))
    said = [DECLARES.get(t.removeprefix(IPTC)) for t in types]
    ranked = [d for d in _RANK if d in said]
    return {"digital_source_types": types, "actions": actions, "declares": ranked[0] if ranked else None}
