"""The argparse types every command shares."""

from __future__ import annotations

import argparse

import pytest

from mnist_kernels import argtypes


def test_count_takes_zero_and_more_only():
    assert argtypes.count("0") == 0 and argtypes.count("12") == 12
    for bad, why in (("-1", "0 or more"), ("x", "not a whole number"), ("1.5", "whole")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            argtypes.count(bad)
    assert argtypes.positive_int("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="positive"):
        argtypes.positive_int("0")
