"""optbook.averaging against torch.optim.swa_utils.AveragedModel (SWA's mean and its EMA
variant) along real training runs, and against the 8.3 average written out by hand."""

import numpy as np
import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from optbook.averaging import EMA, SWA, averaged_copy


def small_run(seed, steps, dtype=torch.float64):
    """A little MLP trained by SGD with momentum on random data: yields the model after
    every step."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
                                    torch.nn.Linear(8, 1)).to(dtype)
    X = torch.randn(64, 6, generator=g, dtype=dtype)
    y = torch.randn(64, 1, generator=g, dtype=dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    yield model
    for _ in range(steps):
        idx = torch.randint(64, (16,), generator=g)
        loss = ((model(X[idx]) - y[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        yield model


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors])


@pytest.mark.parametrize("seed, swa_start", [(0, 0), (1, 7), (2, 20)])
def test_swa_equals_torch_averaged_model(seed, swa_start):
    ours = theirs = None
    for t, model in enumerate(small_run(seed, 40)):
        if t == swa_start:
            ours, theirs = SWA(model), AveragedModel(model)
            theirs.update_parameters(model)
        elif t > swa_start:
            ours.update(model)
            theirs.update_parameters(model)
    assert ours.updates == int(theirs.n_averaged) == 41 - swa_start
    torch.testing.assert_close(flat(ours.average), flat(theirs.module.parameters()),
                               rtol=1e-12, atol=1e-14)
    assert not torch.allclose(flat(ours.average), flat(model.parameters()))


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_ema_equals_torch_ema_averaged_model(beta):
    ours = theirs = None
    for t, model in enumerate(small_run(3, 30)):
        if t == 0:
            ours = EMA(model, beta)
            theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(beta))
            theirs.update_parameters(model)
        else:
            ours.update(model)
            theirs.update_parameters(model)
    torch.testing.assert_close(flat(ours.average), flat(theirs.module.parameters()),
                               rtol=1e-10, atol=1e-12)


def test_ema_is_the_83_average_started_at_the_first_weights():
    beta, thetas = 0.9, []
    for model in small_run(4, 12):
        thetas.append(flat(model.parameters()).clone())
        if len(thetas) == 1:
            ema = EMA(model, beta)
        else:
            ema.update(model)
    expected = thetas[0]
    for theta in thetas[1:]:
        expected = beta * expected + (1 - beta) * theta
    torch.testing.assert_close(flat(ema.average), expected)


def test_averaging_leaves_training_and_the_model_alone():
    plain = [flat(m.parameters()).clone() for m in small_run(5, 10)]
    averaged, swa = [], None
    for model in small_run(5, 10):
        swa = SWA(model) if swa is None else swa
        swa.update(model)
        averaged.append(flat(model.parameters()).clone())
    for a, b in zip(plain, averaged):
        assert torch.equal(a, b)
    before = flat(model.parameters()).clone()
    eval_model = swa.averaged_model(model)
    assert torch.equal(flat(model.parameters()), before)
    assert torch.equal(flat(eval_model.parameters()), flat(swa.average))
    x = torch.randn(3, 6, dtype=torch.float64)
    assert not torch.allclose(eval_model(x), model(x))


def test_errors_name_the_problem():
    model = next(small_run(0, 0))
    with pytest.raises(ValueError, match="beta"):
        EMA(model, 1.0)
    other = torch.nn.Linear(3, 1).double()
    with pytest.raises(ValueError, match="do not match"):
        SWA(model).update(other)
    with pytest.raises(ValueError, match="parameter tensors"):
        averaged_copy(model, [torch.zeros(1)])
    with pytest.raises(ValueError, match="shape"):
        averaged_copy(other, [torch.zeros(2, 3), torch.zeros(1)])


def test_swa_of_noisy_iterates_is_nearer_than_the_iterates():
    """The reason to average: iterates scattered around a point (here 0) average to
    within about 1/√n of a typical iterate's distance."""
    rng = np.random.default_rng(0)
    p = torch.nn.Linear(50, 1, bias=False).double()
    swa = None
    for _ in range(100):
        with torch.no_grad():
            p.weight.copy_(torch.tensor(rng.normal(size=(1, 50))))
        if swa is None:
            swa = SWA(p)
        else:
            swa.update(p)
    assert swa.updates == 100
    assert float(flat(swa.average).norm()) < 0.2 * float(p.weight.detach().norm())
