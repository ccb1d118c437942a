"""Tests for optbook.beyond_adam: each optimizer step for step against its reference
(torch.optim.NAdam, RAdam, Adafactor, Muon + AdamW; lion_pytorch.Lion;
schedulefree.AdamWScheduleFree) over seeded random hyperparameters, Muon's
Newton–Schulz against torch's (bfloat16, and the same code in float32/float64),
NumPy/torch agreement, errors, state_dict round trips and the state's size."""

import inspect

import numpy as np
import pytest
import schedulefree
import torch
from lion_pytorch import Lion as ReferenceLion
from numpy.testing import assert_allclose
from torch.optim import _muon

import optimizer_streams
from optimizer_streams import assert_same_on_numpy_and_torch
from optbook.beyond_adam import (BEYOND_ADAM, Adafactor, Lion, Muon, NAdam, RAdam,
                                 ScheduleFreeAdamW, newton_schulz, radam_rectification,
                                 state_floats_per_parameter)
from optbook.optimizers import Adam, GradientError

SHAPES = {"W": (5, 3), "U": (3, 6), "b": (6,), "K": (2, 3, 4)}
MATRICES = {"W": (5, 3), "U": (3, 6), "V": (4, 4)}
STEPS = 150
SEEDS = [0, 1, 2, 3]


random_params, gradient_stream = optimizer_streams.bound_to(SHAPES)


# ------------------------------------------------------------------------ shared helpers
def draw(case, seed):
    """Seeded random hyperparameters for one optimizer (our keyword names)."""
    rng = np.random.default_rng(seed)
    lr = float(10 ** rng.uniform(-3.5, -1.5))
    beta1, beta2 = float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.9, 0.9999))
    epsilon = float(10 ** rng.uniform(-10, -6))
    wd = float(10 ** rng.uniform(-3, -0.5)) * (seed % 2)   # odd seeds decay
    decoupled = bool(seed % 4 == 1)
    return {"NAdam": dict(lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon,
                          weight_decay=wd, momentum_decay=float(rng.uniform(1e-3, 1e-2)),
                          decoupled_weight_decay=decoupled),
            "RAdam": dict(lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon,
                          weight_decay=wd, decoupled_weight_decay=decoupled),
            "Adafactor": dict(lr=float(10 ** rng.uniform(-2.5, -0.5)),
                              beta2_decay=float(rng.uniform(-1, -0.5)),
                              epsilon1=[None, 1e-30][seed % 2],
                              epsilon2=float(10 ** rng.uniform(-4, -2)),
                              d=float(rng.uniform(1, 2)), weight_decay=wd),
            "Lion": dict(lr=lr / 5, beta1=beta1, beta2=float(rng.uniform(0.9, 0.999)),
                         weight_decay=wd),
            "ScheduleFreeAdamW": dict(lr=lr, beta1=beta1, beta2=beta2, epsilon=epsilon,
                                      weight_decay=wd, warmup_steps=int(rng.integers(0, 30)),
                                      r=float(rng.uniform(0, 1)) * (seed % 2),
                                      weight_lr_power=float(rng.uniform(0, 3))),
            "Muon": dict(lr=float(10 ** rng.uniform(-3, -1.5)), weight_decay=wd,
                         momentum=float(rng.uniform(0.8, 0.99)), nesterov=bool(seed % 2 == 0),
                         ns_steps=int(rng.integers(3, 8)), epsilon=1e-7,
                         adjust_lr_fn=[None, "original", "match_rms_adamw"][seed % 3],
                         adamw_lr=lr, adamw_beta1=beta1, adamw_beta2=beta2,
                         adamw_epsilon=epsilon, adamw_weight_decay=wd)}[case]


def reference(case, hp, tensors):
    """The reference optimizer the docstring names, with the same hyperparameters."""
    betas = (hp.get("beta1"), hp.get("beta2"))
    if case == "NAdam":
        return torch.optim.NAdam(tensors, lr=hp["lr"], betas=betas, eps=hp["epsilon"],
                                 weight_decay=hp["weight_decay"],
                                 momentum_decay=hp["momentum_decay"],
                                 decoupled_weight_decay=hp["decoupled_weight_decay"])
    if case == "RAdam":
        return torch.optim.RAdam(tensors, lr=hp["lr"], betas=betas, eps=hp["epsilon"],
                                 weight_decay=hp["weight_decay"],
                                 decoupled_weight_decay=hp["decoupled_weight_decay"])
    if case == "Adafactor":
        return torch.optim.Adafactor(tensors, lr=hp["lr"], beta2_decay=hp["beta2_decay"],
                                     eps=(hp["epsilon1"], hp["epsilon2"]), d=hp["d"],
                                     weight_decay=hp["weight_decay"], foreach=False)
    if case == "Lion":
        return ReferenceLion(tensors, lr=hp["lr"], betas=betas,
                             weight_decay=hp["weight_decay"])
    if case == "ScheduleFreeAdamW":
        opt = schedulefree.AdamWScheduleFree(
            tensors, lr=hp["lr"], betas=betas, eps=hp["epsilon"],
            weight_decay=hp["weight_decay"], warmup_steps=hp["warmup_steps"], r=hp["r"],
            weight_lr_power=hp["weight_lr_power"], foreach=False)
        opt.train()
        return opt
    raise KeyError(case)




def run_side_by_side(ours, twin, params, tensors, grads, steps, check):
    """Feed the same gradients to both; ``check(params, tensors)`` after every step."""
    for _ in range(steps):
        g = grads(params)
        for key, tensor in zip(params, tensors):
            tensor.grad = torch.from_numpy(g["d" + key].copy())
        twin.step()
        ours.update(params, g)
        check(params, tensors)


def close(rtol, atol):
    def check(params, tensors):
        for key, tensor in zip(params, tensors):
            assert_allclose(params[key], tensor.detach().numpy(), rtol=rtol, atol=atol,
                            err_msg=key)
    return check


# ----------------------------------------------------------------- parity with references
@pytest.fixture
def float64_scalars():
    """torch keeps per-parameter scalars (NAdam's product of the mu's, the step count) in
    tensors of the default dtype, float32: that alone moves NAdam's step by ~1e-8
    relative. With float64 as the default the references compute in float64 throughout."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", ["NAdam", "RAdam", "Adafactor", "Lion",
                                  "ScheduleFreeAdamW"])
def test_matches_reference_step_for_step(case, seed, float64_scalars):
    hp = draw(case, seed)
    ours, params = BEYOND_ADAM[case](**hp), random_params(seed)
    tensors = [torch.tensor(p, requires_grad=True) for p in params.values()]
    twin = reference(case, hp, tensors)
    run_side_by_side(ours, twin, params, tensors, gradient_stream(seed), STEPS,
                     close(rtol=1e-9, atol=1e-12))
    assert ours.t == STEPS


@pytest.mark.parametrize("seed", SEEDS)
def test_schedule_free_eval_weights_match_reference(seed):
    """eval() moves y to the average x exactly as the reference does, and train() back."""
    hp = draw("ScheduleFreeAdamW", seed)
    ours, params = ScheduleFreeAdamW(**hp), random_params(seed)
    tensors = [torch.tensor(p, requires_grad=True) for p in params.values()]
    twin = reference("ScheduleFreeAdamW", hp, tensors)
    grads = gradient_stream(seed)
    for block in range(3):
        run_side_by_side(ours, twin, params, tensors, grads, 30, lambda p, t: None)
        y = {k: p.copy() for k, p in params.items()}
        twin.eval()
        ours.eval(params)
        close(rtol=1e-9, atol=1e-12)(params, tensors)
        assert not np.allclose(params["W"], y["W"])   # x is not y
        with pytest.raises(ValueError, match=r"eval mode .* call opt.train\(params\)"):
            ours.update(params, grads(params))
        twin.train()
        ours.train(params)
        close(rtol=1e-9, atol=1e-12)(params, tensors)
        assert_allclose(params["W"], y["W"], rtol=1e-12, atol=1e-12)


def test_schedule_free_average_is_plain_mean_of_z_without_warmup():
    """With no warm-up and r = 0, x_t is the mean of z_1 … z_t (c_t = 1/t)."""
    opt, params = ScheduleFreeAdamW(lr=0.05), {"w": np.array([1.0, -2.0, 3.0])}
    zs = []
    rng = np.random.default_rng(0)
    for _ in range(20):
        opt.update(params, {"dw": params["w"] + rng.standard_normal(3)})
        zs.append(opt.state["w"]["z"].copy())
    opt.eval(params)
    assert_allclose(params["w"], np.mean(zs, axis=0), rtol=1e-12)


# --------------------------------------------------------------------------------- Muon
def _reference_newton_schulz(dtype):
    """torch's own Newton–Schulz, its code unchanged but for the bfloat16 cast."""
    source = inspect.getsource(_muon._zeropower_via_newtonschulz)
    assert source.count("grad.bfloat16()") == 1   # the one line we change
    source = source.replace("grad.bfloat16()", f"grad.to(torch.{dtype}, copy=True)")  # a copy, as bfloat16() makes
    namespace = {"torch": torch, "Tensor": torch.Tensor}
    exec(source, namespace)
    return namespace["_zeropower_via_newtonschulz"]


def _muon_reference(hp, tensors):
    """torch.optim.Muon on the 2-D tensors, torch.optim.AdamW on the others."""
    matrices = [t for t in tensors if t.ndim == 2]
    others = [t for t in tensors if t.ndim != 2]
    muon = torch.optim.Muon(matrices, lr=hp["lr"], weight_decay=hp["weight_decay"],
                            momentum=hp["momentum"], nesterov=hp["nesterov"],
                            eps=hp["epsilon"], ns_steps=hp["ns_steps"],
                            adjust_lr_fn=hp["adjust_lr_fn"])
    if not others:
        return muon
    adamw = torch.optim.AdamW(others, lr=hp["adamw_lr"],
                              betas=(hp["adamw_beta1"], hp["adamw_beta2"]),
                              eps=hp["adamw_epsilon"], weight_decay=hp["adamw_weight_decay"])

    class Both:
        def step(self):
            muon.step()
            adamw.step()
    return Both()


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-6)])
@pytest.mark.parametrize("shape", [(5, 3), (3, 6), (16, 16), (40, 7)])
def test_newton_schulz_matches_torch_code_in_full_precision(shape, dtype, rtol):
    """Our NumPy Newton–Schulz and torch's (in float32/float64 instead of bfloat16)."""
    reference_ns = _reference_newton_schulz(dtype)
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    for steps in (1, 5, 9):
        G = (rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3)).astype(dtype)
        ours = newton_schulz(G, steps=steps)
        theirs = reference_ns(torch.from_numpy(G), _muon.DEFAULT_A_B_C
                              if hasattr(_muon, "DEFAULT_A_B_C")
                              else (_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C),
                              steps, _muon.EPS).numpy()
        assert ours.dtype == theirs.dtype == np.dtype(dtype)
        scale = np.abs(theirs).max()   # entries are O(1): compare on that scale
        assert_allclose(ours, theirs, rtol=0, atol=rtol * scale * 10)


def test_newton_schulz_on_torch_float32_is_torch_code_to_the_bit_or_rounding():
    """On torch float32 tensors our function and torch's float32 copy agree to float32
    rounding: at most a few units in the last place after 5 iterations."""
    reference_ns = _reference_newton_schulz("float32")
    gen = torch.Generator().manual_seed(0)
    G = torch.randn(24, 10, generator=gen)
    ours = newton_schulz(G)
    theirs = reference_ns(G, (_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C), 5,
                          _muon.EPS)
    ulp = torch.finfo(torch.float32).eps
    assert float((ours - theirs).abs().max()) <= 16 * ulp


def _relative(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_newton_schulz_bfloat16_tolerance():
    """torch runs Newton–Schulz in bfloat16 (8 significant bits). Over random shapes
    and scales its result differs from the float32 one by about 1.5 % (median,
    Frobenius norm, relative) and never by more than 10 %: the stated tolerance."""
    rng, errors = np.random.default_rng(1), []
    for _ in range(100):
        shape = tuple(int(n) for n in rng.integers(2, 40, 2))
        G = (rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3)).astype(np.float32)
        bf16 = _muon._zeropower_via_newtonschulz(
            torch.from_numpy(G), (_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C), 5,
            _muon.EPS)
        assert bf16.dtype == torch.bfloat16
        errors.append(_relative(newton_schulz(G), bf16.float().numpy()))
    assert max(errors) < 0.10 and 1e-3 < np.median(errors) < 0.03, errors


def test_newton_schulz_orthogonalises():
    """For G whose singular values lie within a factor 30 of each other, 5 iterations
    keep G's singular vectors and push every singular value into about 0.5–1.2."""
    rng = np.random.default_rng(5)
    for shape in [(8, 8), (20, 6), (6, 30)]:
        G = rng.standard_normal(shape) @ np.diag(10 ** rng.uniform(-1, 0.5, shape[1]))
        O = newton_schulz(G)
        s = np.linalg.svd(O, compute_uv=False)
        assert 0.5 < s.min() and s.max() < 1.2, s
        U, _, Vt = np.linalg.svd(G, full_matrices=False)
        inner = U.T @ O @ Vt.T   # diagonal if O = U S' Vᵀ
        assert np.abs(inner - np.diag(np.diag(inner))).max() < 1e-6


@pytest.mark.parametrize("seed", SEEDS + [4, 5])
def test_muon_matches_torch_muon_and_adamw_with_full_precision_newton_schulz(
        seed, monkeypatch):
    """Step for step in float64, torch's Newton–Schulz run in float64 (its code, cast
    changed): Muon on the matrices, AdamW on the vector and the 3-D array."""
    monkeypatch.setattr(_muon, "_zeropower_via_newtonschulz",
                        _reference_newton_schulz("float64"))
    hp = draw("Muon", seed)
    shapes = dict(MATRICES, b=(6,), K=(2, 3, 4))
    ours, params = Muon(**hp), random_params(seed, shapes)
    tensors = [torch.tensor(p, requires_grad=True) for p in params.values()]
    run_side_by_side(ours, _muon_reference(hp, tensors), params, tensors,
                     gradient_stream(seed, shapes), STEPS, close(rtol=1e-9, atol=1e-11))
    assert set(ours.state["W"]) == {"m"} and set(ours.state["b"]) == {"t", "m", "v"}


@pytest.mark.parametrize("seed", [0, 1])
def test_muon_against_torch_muon_in_bfloat16_within_stated_tolerance(seed):
    """Unpatched torch.optim.Muon (bfloat16 Newton–Schulz) against ours in float32:
    every step's change of each matrix agrees to 10 % (Frobenius norm, relative), the
    tolerance measured for one Newton–Schulz call above."""
    hp = dict(draw("Muon", seed), weight_decay=0.0)
    ours, params = Muon(**hp), {k: v.astype(np.float32)
                                for k, v in random_params(seed, MATRICES).items()}
    tensors = [torch.tensor(p, requires_grad=True) for p in params.values()]
    twin = _muon_reference(hp, tensors)
    grads = gradient_stream(seed, MATRICES)
    for _ in range(20):
        g = {k: v.astype(np.float32) for k, v in grads(params).items()}
        before = {k: p.copy() for k, p in params.items()}
        for key, tensor in zip(params, tensors):
            tensor.data = torch.from_numpy(before[key].copy())   # same starting point
            tensor.grad = torch.from_numpy(g["d" + key].copy())
        twin.step()
        ours.update(params, g)
        for key, tensor in zip(params, tensors):
            ours_step = params[key] - before[key]
            their_step = tensor.detach().numpy() - before[key]
            assert _relative(ours_step, their_step) < 0.10


def test_muon_documented_recursion_gives_the_same_update_as_the_code():
    """torch's docstring writes B = μB + g and g + μB; its code (and ours) averages:
    m = μm + (1-μ)g and μm + (1-μ)g. By induction B = m/(1-μ), so both directions
    differ by the factor 1/(1-μ), which Newton–Schulz's normalisation removes."""
    rng, mu = np.random.default_rng(0), 0.95
    B, W = np.zeros((4, 6)), np.zeros((4, 6))
    opt = Muon(lr=1.0, weight_decay=0.0, momentum=mu)
    for _ in range(5):
        g = rng.standard_normal((4, 6))
        B = mu * B + g
        before = W.copy()
        opt.update({"W": W}, {"dW": g})
        assert_allclose(opt.state["W"]["m"], (1 - mu) * B, rtol=1e-12)
        assert_allclose(W - before, -newton_schulz(g + mu * B), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------ RAdam's start
@pytest.mark.parametrize("beta2", [0.99, 0.999, 0.9999])
def test_radam_rectification_starts_after_rho_exceeds_five(beta2):
    rhos = [radam_rectification(t, beta2) for t in range(1, 2000)]
    first = next(t for t, (rho, r) in enumerate(rhos, start=1) if r is not None)
    assert all(r is None for _, r in rhos[:first - 1]) and rhos[first - 1][0] > 5
    rs = [r for _, r in rhos[first - 1:]]
    assert np.all(np.diff(rs) > 0) and 0 < rs[0] < 0.3 and rs[-1] < 1
    rho_inf = 2 / (1 - beta2) - 1
    assert_allclose(radam_rectification(10**6, beta2), (rho_inf, 1.0), rtol=1e-6)


# ---------------------------------------------------------------------- numpy vs torch
@pytest.mark.parametrize("case", list(BEYOND_ADAM))
def test_torch_tensors_give_same_result_as_numpy(case):
    hp = dict(draw(case, seed=7))
    if case != "Muon":  # a schedule too (Muon's matrix lr as well)
        hp["lr"] = lambda k, lr0=hp["lr"]: lr0 / (1 + 0.01 * k)
    np_opt, t_opt = BEYOND_ADAM[case](**hp), BEYOND_ADAM[case](**hp)
    assert_same_on_numpy_and_torch(np_opt, t_opt, SHAPES, steps=60, rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------------- memory
def test_state_floats_per_parameter():
    """Adam 2, Lion 1, Adafactor (n + k)/(n k) on a matrix, Muon 1 on matrices."""
    n, k = 64, 32
    grads = {"dW": np.ones((n, k))}
    expected = {Adam: 2.0, NAdam: 2.0, RAdam: 2.0, Lion: 1.0, ScheduleFreeAdamW: 2.0,
                Muon: 1.0, Adafactor: (n + k) / (n * k)}
    for cls, floats in expected.items():
        opt, params = cls(), {"W": np.zeros((n, k))}
        opt.update(params, grads)
        assert state_floats_per_parameter(opt, params) == pytest.approx(floats)
    opt, params = Adafactor(), {"W": np.zeros((n, k)), "b": np.zeros(k)}
    opt.update(params, {"dW": np.ones((n, k)), "db": np.ones(k)})
    assert state_floats_per_parameter(opt, params) == pytest.approx((n + k + k) / (n * k + k))
    with pytest.raises(ValueError, match=r"no state yet for \['W'\]"):
        state_floats_per_parameter(Lion(), {"W": np.zeros(3)})


# ------------------------------------------------------------------------ errors
@pytest.mark.parametrize("cls, kwargs, match", [
    (NAdam, dict(lr=-1), r"Invalid lr: -1"),
    (NAdam, dict(beta1=1.0), r"Invalid beta1: 1.0"),
    (NAdam, dict(momentum_decay=-0.1), r"Invalid momentum_decay: -0.1"),
    (NAdam, dict(decoupled_weight_decay=1), r"Invalid decoupled_weight_decay: 1"),
    (RAdam, dict(beta2=-0.5), r"Invalid beta2: -0.5"),
    (RAdam, dict(epsilon=float("nan")), r"Invalid epsilon: nan"),
    (Adafactor, dict(beta2_decay=0.5), r"Invalid beta2_decay: 0.5"),
    (Adafactor, dict(d=0.5), r"Invalid d: 0.5"),
    (Adafactor, dict(epsilon1=-1.0), r"Invalid epsilon1: -1.0"),
    (Lion, dict(beta2=1.5), r"Invalid beta2: 1.5"),
    (Lion, dict(weight_decay=-1), r"Invalid weight_decay: -1"),
    (Muon, dict(momentum=1.0), r"Invalid momentum: 1.0"),
    (Muon, dict(nesterov="yes"), r"Invalid nesterov: 'yes'"),
    (Muon, dict(ns_steps=0), r"Invalid ns_steps: 0"),
    (Muon, dict(ns_steps=2.5), r"Invalid ns_steps: 2.5"),
    (Muon, dict(ns_coefficients=(1, 2)), r"Invalid ns_coefficients: \(1, 2\)"),
    (Muon, dict(adjust_lr_fn="bigger"), r"Invalid adjust_lr_fn: 'bigger'"),
    (Muon, dict(adamw_lr=0), r"Invalid lr: 0"),
    (ScheduleFreeAdamW, dict(warmup_steps=-1), r"Invalid warmup_steps: -1"),
    (ScheduleFreeAdamW, dict(beta1=0.0), r"Invalid beta1: 0.0 \(Schedule-Free needs"),
    (ScheduleFreeAdamW, dict(r=-1), r"Invalid r: -1"),
])
def test_invalid_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("case", list(BEYOND_ADAM))
def test_bad_update_raises_and_changes_nothing(case):
    opt, params = BEYOND_ADAM[case](), {"W": np.ones((2, 3)), "b": np.zeros(3)}
    opt.update(params, {"dW": np.ones((2, 3)), "db": np.ones(3)})
    before, saved = {k: v.copy() for k, v in params.items()}, opt.state_dict()
    for grads, error, match in [
            ({"dW": np.ones((2, 3))}, GradientError, r"no gradient 'db' for parameter 'b'"),
            ({"dW": np.ones((2, 3)), "db": np.ones(4)}, GradientError,
             r"gradient 'db' has shape \(4,\) but parameter 'b' has shape \(3,\)")]:
        with pytest.raises(error, match=match):
            opt.update(params, grads)
    for k, v in before.items():
        assert_allclose(params[k], v, rtol=0, atol=0)
    assert opt.t == saved["t"] == 1


def test_adafactor_state_that_does_not_fit_is_rejected_before_any_change():
    opt, params = Adafactor(), {"W": np.ones((4, 3)), "b": np.ones(3)}
    opt.update(params, {"dW": np.ones((4, 3)), "db": np.ones(3)})
    saved = opt.state_dict()
    other = Adafactor()
    other.load_state_dict(saved)
    wrong = {"W": np.ones((4, 3)), "b": np.ones((3, 2))}   # b is now a matrix
    with pytest.raises(ValueError, match=r"state of parameter 'b' does not fit it: "
                                         r"\{'v': \(3,\)\} vs parameter shape \(3, 2\)"):
        other.update(wrong, {"dW": np.ones((4, 3)), "db": np.ones((3, 2))})
    assert (wrong["W"] == 1).all() and other.t == 1


# ------------------------------------------------------------------------- state_dict
@pytest.mark.parametrize("case", list(BEYOND_ADAM))
def test_state_dict_round_trip_resumes_identically(case):
    hp = draw(case, seed=3)
    stream = gradient_stream(3)
    grads = [stream(random_params(s)) for s in range(10)]
    straight, params = BEYOND_ADAM[case](**hp), random_params(3)
    for g in grads:
        straight.update(params, g)
    first, resumed = BEYOND_ADAM[case](**hp), random_params(3)
    for g in grads[:5]:
        first.update(resumed, g)
    saved = first.state_dict()
    for g in grads[5:]:  # the saved copy must not move with the optimizer it came from
        first.update({k: p.copy() for k, p in resumed.items()}, g)
    second = BEYOND_ADAM[case](**dict(hp, lr=1.0))  # hyperparameters from the state dict
    second.load_state_dict(saved)
    assert second.t == 5 and second.lr == hp["lr"]
    for g in grads[5:]:
        second.update(resumed, g)
    for k in params:
        assert_allclose(resumed[k], params[k], rtol=0, atol=0)


def test_defaults_are_the_references_defaults():
    signature = {
        NAdam: inspect.signature(torch.optim.NAdam).parameters,
        RAdam: inspect.signature(torch.optim.RAdam).parameters,
        Adafactor: inspect.signature(torch.optim.Adafactor).parameters,
        Lion: inspect.signature(ReferenceLion).parameters,
        Muon: inspect.signature(torch.optim.Muon).parameters,
        ScheduleFreeAdamW: inspect.signature(schedulefree.AdamWScheduleFree).parameters}
    spelled = {"beta1": ("betas", 0), "beta2": ("betas", 1), "epsilon": ("eps", None),
               "epsilon1": ("eps", 0), "epsilon2": ("eps", 1)}
    for cls, theirs in signature.items():
        ours = cls().state_dict()["hyperparameters"]
        for name, value in ours.items():
            if name.startswith("adamw_"):   # Muon's AdamW for the other arrays
                continue
            their_name, index = spelled.get(name, (name, None))
            if cls is Adafactor and name == "epsilon":
                continue
            default = theirs[their_name].default
            if index is not None and isinstance(default, tuple):
                default = default[index]
            assert value == default, (cls.__name__, name, value, default)
