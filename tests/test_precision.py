"""optbook.precision: bf16 rounding against torch's own bf16 conversion and arithmetic;
the stagnation of bf16 parameters and state, and the fp32 master copy that removes it."""

import itertools

import numpy as np
import pytest
import torch

from optbook.ewa import ewa
from optbook.precision import (MODES, bf16_spacing, ewa_in_dtype, lost_updates,
                               round_to_bf16, train_in_precision)


def torch_bf16(x):
    return torch.tensor(np.asarray(x, np.float32)).to(torch.bfloat16).float().numpy()


def awkward_floats(n=200_000, seed=0):
    """Random float32 values over many binades, exact ties (…8000 in the low bits),
    subnormals, huge values, signed zeros and infinities."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=n) * 10.0 ** rng.uniform(-40, 38, size=n)).astype(np.float32)
    ties = (rng.integers(0, 2**31, size=5000, dtype=np.uint64) & 0xFFFF0000 | 0x8000)
    special = np.array([0.0, -0.0, np.inf, -np.inf, 3.3e38, -3.39e38, 1e-40, -1e-42,
                        2.0 ** -133, 1.0], np.float32)
    return np.concatenate([x, ties.astype(np.uint32).view(np.float32), special])


def test_round_to_bf16_equals_torch_conversion():
    x = awkward_floats()
    np.testing.assert_array_equal(round_to_bf16(x), torch_bf16(x))
    assert np.isnan(round_to_bf16([np.nan])[0])


def test_spacing_is_the_gap_to_the_next_bf16_number():
    x = round_to_bf16(np.abs(awkward_floats(20_000, seed=1)))
    x = x[np.isfinite(x) & (x < 3e38) & (x > 0)]
    nxt = (torch.tensor(x).to(torch.bfloat16).view(torch.int16) + 1).view(torch.bfloat16)
    np.testing.assert_array_equal(bf16_spacing(x), nxt.double().numpy() - x.astype(np.float64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lost_updates_are_those_torch_bf16_addition_loses(seed):
    rng = np.random.default_rng(seed)
    theta = round_to_bf16(rng.normal(size=50_000))
    delta = round_to_bf16(rng.normal(size=50_000) * 10.0 ** rng.uniform(-6, -1, 50_000))
    p = torch.tensor(theta).to(torch.bfloat16)
    p.add_(torch.tensor(delta).to(torch.bfloat16))        # torch's own bf16 arithmetic
    lost = lost_updates(theta, delta)
    np.testing.assert_array_equal(lost, (p.float().numpy() == theta) & (delta != 0))
    assert 0.1 < lost.mean() < 0.9          # both kinds occur in the sample
    # the rule: lost below half the gap to the next bf16 number in the direction of the
    # move (a power of two has a gap half as wide below it as above it), kept above it
    half = bf16_spacing(theta) / 2
    power_of_two = np.abs(np.frexp(theta)[0]) == 0.5
    toward_zero = np.sign(delta) != np.sign(theta)
    half = np.where(power_of_two & toward_zero, half / 2, half)
    assert lost[np.abs(delta) < 0.99 * half].all()
    assert not lost[np.abs(delta) > 1.01 * half].any()
    with pytest.raises(ValueError, match="bf16 numbers"):
        lost_updates([1.001], [0.1])


def test_sgd_on_bf16_parameters_is_the_rounded_float32_step():
    rng = np.random.default_rng(3)
    theta, grad = round_to_bf16(rng.normal(size=1000)), round_to_bf16(rng.normal(size=1000))
    p = torch.nn.Parameter(torch.tensor(theta).to(torch.bfloat16))
    p.grad = torch.tensor(grad).to(torch.bfloat16)
    torch.optim.SGD([p], lr=1e-3).step()
    expected = round_to_bf16(theta - np.float32(1e-3) * grad)
    np.testing.assert_array_equal(p.detach().float().numpy(), expected)


def test_ewa_in_dtype_float64_is_the_83_average_and_bf16_is_stepwise_rounding():
    x = np.r_[np.ones(50), 4 * np.ones(3000)]
    np.testing.assert_allclose(ewa_in_dtype(x, 0.9, torch.float64), ewa(x, 0.9), rtol=1e-12)
    # bf16: each operation rounded (numpy reference built on round_to_bf16)
    v, ref = np.float32(1.0), []
    for xi in x:
        v = round_to_bf16(np.float32(v) * np.float32(0.999))
        v = round_to_bf16(v + np.float32(1 - 0.999) * np.float32(xi))
        ref.append(float(v))
    got = ewa_in_dtype(x, 0.999, torch.bfloat16, start=1.0)
    np.testing.assert_array_equal(got, ref)
    exact = ewa_in_dtype(x, 0.999, torch.float64, start=1.0)
    # the bf16 state stops moving (each change is below half a spacing) far from x = 4
    assert exact[-1] > 3.5 and got[-1] < exact[-1] - 1
    assert np.ptp(got[-1000:]) == 0 and np.ptp(exact[-1000:]) > 0.1


def regression_task(seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(512, 10, generator=g)
    y = X @ (0.5 * torch.randn(10, 1, generator=g)) + 0.1 * torch.randn(512, 1, generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Linear(10, 1)
    loss_fn = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()           # noqa: E731

    def eval_fn(m):
        W, b = m.weight.detach().double(), m.bias.detach().double()
        return float(((X.double() @ W.T + b - y.double()) ** 2).mean())
    return model, loss_fn, itertools.repeat((X, y)), eval_fn


@pytest.mark.parametrize("seed", [0, 1])
def test_bf16_adam_stagnates_and_fp32_master_weights_fix_it(seed):
    runs = {}
    for mode in MODES:
        model, loss_fn, batches, eval_fn = regression_task(seed)
        runs[mode] = train_in_precision(model, loss_fn, batches,
                                        lambda p: torch.optim.Adam(p, lr=1e-3), 1200,
                                        mode, eval_fn)
    fp32, bf16, master = (runs[m].losses[-1] for m in MODES)
    assert bf16 > 5 * fp32                       # stuck far above
    assert master == pytest.approx(fp32, rel=0.05)
    assert runs["bf16"].unchanged[-100:].mean() > 0.8
    assert runs["fp32"].unchanged[-100:].mean() < 0.5
    assert all(len(r.losses) == 1201 and len(r.unchanged) == 1200 for r in runs.values())


def test_train_in_precision_checks_its_arguments():
    model, loss_fn, batches, eval_fn = regression_task()
    with pytest.raises(ValueError, match="mode"):
        train_in_precision(model, loss_fn, batches, torch.optim.SGD, 1, "fp16", eval_fn)
    with pytest.raises(ValueError, match="steps"):
        train_in_precision(model, loss_fn, batches, torch.optim.SGD, 0, "fp32", eval_fn)
    with pytest.raises(ValueError, match="beta"):
        ewa_in_dtype([1.0], 1.5, torch.float32)
