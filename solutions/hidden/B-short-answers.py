# %% setup
# References for B1-B5, computed once. Adam's comes from optbook's adam_step (checked
# against torch.optim.Adam in tests/test_optimizers.py), one step at a time.
import numbers as _numbers
import numpy as _np
from optbook.optimizers import adam_step as _adam_step


def _ref_count(updates, kind):
    """B1_updates[kind] if it is a number (not a bool), else None."""
    value = updates.get(kind) if isinstance(updates, dict) else None
    return value if isinstance(value, _numbers.Real) and not isinstance(value, bool) else None


def _ref_adam(w, g, m, v, t, lr, beta1, beta2, eps):
    """(w, m, v) after one Adam step, as floats."""
    state = [_np.array(float(x)) for x in (w, m, v)]
    _adam_step(state[0], _np.array(float(g)), state[1], state[2], t, lr, beta1, beta2, eps)
    return tuple(float(x) for x in state)


# B2: a constant gradient, then alternating random gradients for three β.
_ref_b2_constant = 4.0 * (1.0 - 0.9 ** _np.arange(1, 31))
_ref_b2_cases, _rng = [], _np.random.default_rng(8)
for _beta in (0.5, 0.9, 0.99):
    _g = [float(_x) for _x in _rng.normal(size=25) * 3.0]
    _g[::2] = [-_x for _x in _g[::2]]
    _m, _ms = 0.0, []
    for _gt in _g:
        _m = _beta * _m + (1.0 - _beta) * _gt
        _ms.append(_m)
    _ref_b2_cases.append((_beta, tuple(_g), tuple(_ms)))

# B3: adam_update's arguments (w, g, m, v, t, lr, beta1, beta2, eps) and the (w, m, v) after.
_ref_b3_first_step = [((_w0, _g0, 0.0, 0.0, 1, _lr, _b1, _b2, _eps),
                       _ref_adam(_w0, _g0, 0.0, 0.0, 1, _lr, _b1, _b2, _eps))
                      for _w0, _g0, _lr, _b1, _b2, _eps in [(0.7, -2.5, 0.01, 0.9, 0.999, 1e-8),
                                                            (-3.0, 40.0, 0.1, 0.8, 0.99, 1e-8)]]
_ref_b3_epsilon = [((2.0, _g0, 0.01, 0.002, _t, 0.1, 0.9, 0.999, _eps),
                    _ref_adam(2.0, _g0, 0.01, 0.002, _t, 0.1, 0.9, 0.999, _eps))
                   for _g0, _eps, _t in [(1e-9, 1e-8, 1), (0.3, 0.5, 4), (0.0, 1e-8, 2)]]
_ref_b3_later_steps, _state = [], (1.3, 0.0, 0.0)  # 20 steps from w = 1.3: (t, g, (w, m, v) after)
for _t in range(1, 21):
    _g = 2.0 * _state[0] + 0.5 * _np.sin(3.0 * _t)
    _state = _ref_adam(_state[0], _g, _state[1], _state[2], _t, 0.05, 0.8, 0.99, 1e-12)
    _ref_b3_later_steps.append((_t, _g, _state))

# B4: (t, α_max, W) and the warm-up rate, t counted from 0.
_ref_b4 = [(_t, _lr_max, _W, _lr_max * (_t + 1) / _W if _t < _W else _lr_max)
           for _lr_max, _W in [(0.1, 10), (0.003, 1), (2.0, 7)] for _t in range(0, 3 * _W + 5)]

# B5: one step from w = 1 with a zero loss gradient, α = 0.001, λ = 0.01: AdamW decays the
# weight, then takes an Adam step (of zero); Adam + L2 adds λw to the gradient instead.
_ref_b5_adamw = _ref_adam(1.0 - 0.001 * 0.01 * 1.0, 0.0, 0.0, 0.0, 1, 0.001, 0.9, 0.999, 1e-8)[0]
_ref_b5_adam_l2 = _ref_adam(1.0, 0.0 + 0.01 * 1.0, 0.0, 0.0, 1, 0.001, 0.9, 0.999, 1e-8)[0]

# %% B1-batch points=1
assert _ref_count(B1_updates, "batch") == 1, (
    "B1 (batch gradient descent): each update uses the gradient over the whole training "
    "set. How many updates does one pass over the data give?")

# %% B1-minibatch points=1
assert _ref_count(B1_updates, "minibatch") == 391, (
    "B1 (mini-batch): count the batches of B = 128 examples that one pass over "
    "N = 50,000 examples takes. 128 does not divide 50,000, and the last, smaller batch "
    "still gives an update.")

# %% B1-stochastic points=1
assert _ref_count(B1_updates, "stochastic") == 50_000, (
    "B1 (stochastic): each update of stochastic gradient descent uses a single example.")

# %% B2-constant points=1
_got = _np.asarray(momentum_average([4.0] * 30, 0.9), dtype=float)
assert _got.shape == (30,), (
    "momentum_average must return one value m_t for every gradient g_t "
    "(30 gradients in, 30 values out).")
assert _np.allclose(_got, _ref_b2_constant, rtol=1e-9, atol=1e-12), (
    "B2: with a constant gradient the average should start small and rise toward the "
    "gradient. Check the start m_0 = 0 and the update m_t = β m_(t-1) + (1-β) g_t.")

# %% B2-general points=1
for _beta, _g, _want in _ref_b2_cases:
    _got = _np.asarray(momentum_average(list(_g), _beta), dtype=float)
    assert _got.shape == (25,) and _np.allclose(_got, _want, rtol=1e-9, atol=1e-12), (
        "B2: momentum_average is wrong for a general sequence of gradients (tried "
        "β = 0.5, 0.9 and 0.99). Use the beta passed in, start from m_0 = 0, and return "
        "m_1, ..., m_T in order.")

# %% B3-first-step points=1
for _args, _want in _ref_b3_first_step:
    _got = [float(_x) for _x in adam_update(*_args)]
    assert len(_got) == 3, "adam_update must return three numbers: (w, m, v) after the step."
    assert _np.allclose(_got, _want, rtol=1e-9, atol=1e-15), (
        "B3: the first step (t = 1, m = v = 0) is wrong. Check the two moment updates, "
        "the bias corrections and where ε goes: w − α m̂/(√v̂ + ε).")

# %% B3-later-steps points=1
_w, _m, _v = 1.3, 0.0, 0.0
for _t, _g, _want in _ref_b3_later_steps:
    _w, _m, _v = [float(_x) for _x in adam_update(_w, _g, _m, _v, _t, 0.05, 0.8, 0.99, 1e-12)]
    assert _np.allclose([_w, _m, _v], _want, rtol=1e-9, atol=1e-15), (
        "B3: adam_update agrees at the start but drifts over later steps (t > 1). Check "
        "that the bias corrections use the step t that is passed in, with beta1 for m "
        "and beta2 for v, and that m and v are returned uncorrected.")

# %% B3-epsilon points=1
for _args, _want in _ref_b3_epsilon:
    _got = [float(_x) for _x in adam_update(*_args)]
    assert _np.allclose(_got, _want, rtol=1e-9, atol=1e-15), (
        "B3: adam_update is wrong when ε is not negligible. In the book's form ε is added "
        "to √v̂ (the square root of the bias-corrected second moment), outside the root.")

# %% B4-warmup points=1
for _t, _lr_max, _W, _want in _ref_b4:
    assert _np.isclose(float(warmup_lr(_t, _lr_max, _W)), _want, rtol=1e-12, atol=0.0), (
        "B4: warmup_lr is wrong for some t. Count t from 0 as in the book: the first "
        "epoch already uses α_max/W, α_max is reached at t = W − 1, and the rate "
        "stays at α_max from then on.")

# %% B5-adamw points=1
assert isinstance(B5_w_adamw, _numbers.Real) and abs(float(B5_w_adamw) - _ref_b5_adamw) <= 1e-7, (
    "B5 (AdamW): the decoupled decay multiplies the weight by 1 − αλ before the Adam "
    "step, and with a zero loss gradient the Adam step itself is zero.")

# %% B5-adam-l2 points=1
assert isinstance(B5_w_adam_l2, _numbers.Real) and abs(float(B5_w_adam_l2) - _ref_b5_adam_l2) <= 1e-7, (
    "B5 (Adam with L2): here λw is added to the gradient, and that gradient then goes "
    "through m, v and the bias corrections like any other. Work out m̂ and v̂ at t = 1 "
    "and see what m̂/√v̂ becomes, whatever the size of λ.")
