"""The real-face corpus: photos from an allowed list of package sources, found, aligned and
grouped by identity with the inference pipeline's own face detector (``pycrl train
build-faces``). Only training uses it; nothing here runs at inference time."""

from pycrl.train.corpus.build import build_corpus, read_manifest
from pycrl.train.corpus.sources import SOURCES, Photo, Source

__all__ = ["SOURCES", "Photo", "Source", "build_corpus", "read_manifest"]
