"""The real-face corpus: photos from an allowed list of package sources, found, aligned and
grouped by identity with the inference pipeline's own face detector (``python -m train
build-faces``). Only training uses it; nothing here runs at inference time."""

from train.corpus.build import build_corpus, read_manifest
from train.corpus.sources import SOURCES, Photo, Source

__all__ = ["SOURCES", "Photo", "Source", "build_corpus", "read_manifest"]
