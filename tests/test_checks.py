"""Tests for mmedu._checks: the shared scalar, bool and norm validators."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
import torch

from mmedu._checks import check_bool, check_finite_norms, check_scalar


@pytest.mark.parametrize("value", [1, 0.5, np.float32(0.5), np.float64(0.5), np.int64(3), np.int8(1),
                                   fractions.Fraction(1, 4)])
def test_check_scalar_accepts_every_real_number_type(value):
    got = check_scalar(value, "x", gt=0)
    assert type(got) is float and got == float(value)


@pytest.mark.parametrize("value, shown", [(True, "bool True"), (np.bool_(False), "numpy.bool"),
                                          ("0.5", "str '0.5'"), (None, "NoneType None"),
                                          (np.array([0.5]), "numpy.ndarray"), (1 + 2j, "complex"),
                                          (torch.tensor(0.5), "tensor of shape ()")])
def test_check_scalar_refuses_what_is_not_a_real_number(value, shown):
    with pytest.raises(TypeError, match=rf"temperature: expected a real number in \(0, inf\), got {shown}"):
        check_scalar(value, "temperature", gt=0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_check_scalar_refuses_nan_and_inf(value):
    with pytest.raises(ValueError, match=r"margin: expected a finite real number in \[0, inf\), got"):
        check_scalar(value, "margin", ge=0)


@pytest.mark.parametrize("bounds, value, interval", [
    ({"gt": 0}, 0, r"\(0, inf\)"),
    ({"ge": 0}, -1e-9, r"\[0, inf\)"),
    ({"ge": 0, "le": 1}, 1.5, r"\[0, 1\]"),
    ({"gt": 0, "lt": 1}, 1, r"\(0, 1\)"),
    ({"le": -2}, 0, r"\(-inf, -2\]"),
])
def test_check_scalar_ranges_and_messages(bounds, value, interval):
    with pytest.raises(ValueError, match=rf"level: expected a real number in {interval}, got {float(value)}"):
        check_scalar(value, "level", **bounds)


def test_check_scalar_bounds_are_inclusive_or_exclusive_as_asked():
    assert check_scalar(0, "x", ge=0) == 0.0
    assert check_scalar(1, "x", ge=0, le=1) == 1.0
    assert check_scalar(-5.5, "x") == -5.5  # no bounds: any finite real


def test_check_scalar_one_element_tensors_only_when_asked():
    assert check_scalar(torch.tensor([2.0]), "lr", gt=0, tensor=True) == 2.0
    assert check_scalar(torch.tensor(3), "lr", gt=0, tensor=True) == 3.0
    with pytest.raises(TypeError, match=r"tensor of shape \(2,\)"):
        check_scalar(torch.ones(2), "lr", gt=0, tensor=True)
    with pytest.raises(TypeError, match="dtype torch.bool"):
        check_scalar(torch.tensor(True), "lr", gt=0, tensor=True)
    with pytest.raises(ValueError, match="finite"):
        check_scalar(torch.tensor(float("nan")), "lr", gt=0, tensor=True)


def test_check_bool():
    assert check_bool(True, "flag") is True and check_bool(np.bool_(False), "flag") is False
    for bad, shown in ((1, "int 1"), ("no", "str 'no'"), (None, "NoneType None"), (torch.tensor(True), "torch.Tensor")):
        with pytest.raises(TypeError, match=rf"flag: expected a bool \(True or False\), got {shown}"):
            check_bool(bad, "flag")


def test_check_finite_norms():
    check_finite_norms(torch.tensor([[1.0], [3e38]]), "x")
    with pytest.raises(ValueError, match=r"x: the norm of row 2 overflows torch.float32 \(2 such rows\)"):
        check_finite_norms(torch.tensor([[1.0], [2.0], [float("inf")], [float("inf")]]), "x")
