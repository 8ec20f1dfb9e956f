"""pycrl.options: one declaration of the scoring options, its checks and the CLI flags made from it."""

import argparse
import math

import pytest

from pycrl.errors import OptionError, PycrlError
from pycrl.limits import Limits
from pycrl.options import (MAX_FRAMES, Aggregation, FaceMode, Sampling, ScoringOptions, add_arguments,
                           from_arguments)


def test_defaults_are_the_protocol():
    o = ScoringOptions()
    assert (o.frames, o.sampling, o.faces, o.aggregation, o.threshold) == (32, "uniform", "largest", "mean", None)
    assert o.sampling is Sampling.UNIFORM and o.faces is FaceMode.LARGEST and o.aggregation is Aggregation.MEAN


def test_strings_become_enums_and_compare_equal():
    o = ScoringOptions(sampling="keyframes", aggregation="topk-mean")
    assert o.sampling is Sampling.KEYFRAMES and o.sampling == "keyframes" and str(o.aggregation) == "topk-mean"


@pytest.mark.parametrize("changes, named", [
    (dict(sampling="random"), "sampling: expected one of uniform, keyframes"),
    (dict(faces="some"), "faces: expected one of largest, all"),
    (dict(device="tpu"), "device: expected one of auto, cpu, cuda"),
    (dict(aggregation="median"), "aggregation"),
    (dict(decoder="gstreamer"), "decoder"),
    (dict(decoder="dali", sampling="keyframes"), "dali"),
    (dict(batch_size=0), "batch_size: expected an integer in [1,"),
    (dict(frames=10**9), f"frames: expected an integer in [1, {MAX_FRAMES}]"),
    (dict(frames=2.5), "frames: expected an integer"),
    (dict(frames=True), "frames: expected an integer"),
    (dict(workers=-1), "workers"),
    (dict(heatmap_size=-1), "heatmap_size"),
    (dict(threshold=math.nan), "threshold"),
    (dict(threshold=1.5), "threshold"),
    (dict(threshold="0.5"), "threshold"),
    (dict(limits={"max_pixels": 1}), "limits"),
])
def test_invalid_options_name_the_option_and_what_it_accepts(changes, named):
    with pytest.raises(OptionError, match=named.replace("[", r"\[")) as err:
        ScoringOptions.from_kwargs(**changes)
    assert isinstance(err.value, ValueError) and isinstance(err.value, PycrlError)


def test_unknown_option_lists_the_known_ones():
    with pytest.raises(OptionError, match="unknown option.*'frame_count'.*options are: backend"):
        ScoringOptions.from_kwargs(frame_count=3)


def test_replace_and_round_trip_through_plain_values():
    o = ScoringOptions(frames=8, limits=Limits(timeout_s=5)).replace(faces="all")
    assert (o.frames, o.faces, o.limits.timeout_s) == (8, "all", 5)
    plain = o.to_dict()
    assert plain["faces"] == "all" and type(plain["faces"]) is str and plain["limits"]["timeout_s"] == 5
    assert ScoringOptions.from_dict(plain) == o


def test_cli_flags_are_generated_from_the_fields():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = parser.format_help()
    for flag in ("--backend", "--device", "--precision", "--frames", "--sampling", "--decoder", "--faces",
                 "--aggregation", "--threshold", "--batch-size", "--workers"):
        assert flag in text
    assert "--heatmap-size" not in text and "--limits" not in text  # not command-line options
    assert "keyframes" in text and "[default: 32]" in text
    assert from_arguments(parser.parse_args([])) == ScoringOptions()
    got = from_arguments(parser.parse_args(["--frames", "4", "--faces", "all", "--threshold", "0.7"]))
    assert (got.frames, got.faces, got.threshold) == (4, "all", 0.7)
    with pytest.raises(SystemExit):  # argparse refuses a value outside the vocabulary
        parser.parse_args(["--sampling", "random"])
    with pytest.raises(OptionError, match="frames"):
        from_arguments(parser.parse_args(["--frames", "0"]))
