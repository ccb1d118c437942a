# %% setup
# C1's reference, computed once: three steps of momentum in the book's form
# (m_t = β m_(t-1) + (1 − β) g_t, w_t = w_(t-1) − α m_t) on f(w) = (w − 3)² from w_0 = 10,
# with α = 0.1, β = 0.9 and m_0 = 0; and m_1 for β = 0.99.
import numbers as _numbers
import numpy as _np

_w, _m, _ref_trace = 10.0, 0.0, {"g": [], "m": [], "w": []}
for _t in range(3):
    _g = 2.0 * (_w - 3.0)
    _m = 0.9 * _m + (1.0 - 0.9) * _g
    _w = _w - 0.1 * _m
    _ref_trace["g"].append(_g); _ref_trace["m"].append(_m); _ref_trace["w"].append(_w)
_ref_trace = {_k: tuple(_v) for _k, _v in _ref_trace.items()}
_ref_m1_beta_099 = (1.0 - 0.99) * (2.0 * (10.0 - 3.0))


def _ref_close(values, i, want):
    """Whether ``values`` holds three numbers (a list, tuple or array) whose i-th is
    within 1e-6 of ``want``."""
    seq = list(values) if isinstance(values, (list, tuple, _np.ndarray)) else []
    x = seq[i] if len(seq) == 3 else None
    return isinstance(x, _numbers.Real) and abs(float(x) - want) <= 1e-6


# %% C1-g1 points=1
assert _ref_close(g, 0, _ref_trace["g"][0]), (
    "C1: g1 is not right (checked to within 1e-6). g_1 is the gradient f'(w) = 2(w − 3), taken at w_0, the point before step 1.")

# %% C1-g2 points=1
assert _ref_close(g, 1, _ref_trace["g"][1]), (
    "C1: g2 is not right (checked to within 1e-6). g_2 is the gradient f'(w) = 2(w − 3), taken at w_1, the point before step 2. If an earlier value is wrong, this one will be too: fix the first wrong one first.")

# %% C1-g3 points=1
assert _ref_close(g, 2, _ref_trace["g"][2]), (
    "C1: g3 is not right (checked to within 1e-6). g_3 is the gradient f'(w) = 2(w − 3), taken at w_2, the point before step 3. If an earlier value is wrong, this one will be too: fix the first wrong one first.")

# %% C1-m1 points=1
assert _ref_close(m, 0, _ref_trace["m"][0]), (
    "C1: m1 is not right (checked to within 1e-6). m_1 = β m_0 + (1 − β) g_1, with β = 0.9 and m_0 = 0 (the book's form, not PyTorch's).")

# %% C1-m2 points=1
assert _ref_close(m, 1, _ref_trace["m"][1]), (
    "C1: m2 is not right (checked to within 1e-6). m_2 = β m_1 + (1 − β) g_2, with β = 0.9 and m_0 = 0 (the book's form, not PyTorch's). If an earlier value is wrong, this one will be too: fix the first wrong one first.")

# %% C1-m3 points=1
assert _ref_close(m, 2, _ref_trace["m"][2]), (
    "C1: m3 is not right (checked to within 1e-6). m_3 = β m_2 + (1 − β) g_3, with β = 0.9 and m_0 = 0 (the book's form, not PyTorch's). If an earlier value is wrong, this one will be too: fix the first wrong one first.")

# %% C1-w1 points=1
assert _ref_close(w, 0, _ref_trace["w"][0]), (
    'C1: w1 is not right (checked to within 1e-6). w_1 = w_0 − α m_1, with α = 0.1: the step goes along the average m_1, not along g_1.')

# %% C1-w2 points=1
assert _ref_close(w, 1, _ref_trace["w"][1]), (
    'C1: w2 is not right (checked to within 1e-6). w_2 = w_1 − α m_2, with α = 0.1: the step goes along the average m_2, not along g_2. If an earlier value is wrong, this one will be too: fix the first wrong one first.')

# %% C1-w3 points=1
assert _ref_close(w, 2, _ref_trace["w"][2]), (
    'C1: w3 is not right (checked to within 1e-6). w_3 = w_2 − α m_3, with α = 0.1: the step goes along the average m_3, not along g_3. If an earlier value is wrong, this one will be too: fix the first wrong one first.')

# %% C1-a points=1
assert isinstance(m1_smaller_than_g1, (bool, _np.bool_)) and bool(m1_smaller_than_g1) is True, (
    "C1 (a): m starts at 0, so the first average mixes g_1 with that zero start. "
    "Compare the size of m_1 with that of g_1, and say True or False accordingly.")

# %% C1-b points=1
assert isinstance(m1_with_beta_099, _numbers.Real) and abs(float(m1_with_beta_099) - _ref_m1_beta_099) <= 1e-6, (
    "C1 (b): m1_with_beta_099 is m_1 for β = 0.99, everything else unchanged: "
    "m_1 = β m_0 + (1 − β) g_1 with m_0 = 0.")

# %% setup
# C3: the value under ``key`` in one of the answer's dicts (None if there is none), and
# whether a value is a whole number (a bool is not one).
def _ref_entry(answer, key):
    return answer.get(key) if isinstance(answer, dict) else None


def _ref_is_whole(x):
    return isinstance(x, _numbers.Integral) and not isinstance(x, bool)


# %% C3-learning-rate points=1
assert _ref_entry(diagnosis, "learning_rate_too_high") is True, (
    "C3: look at the learning rate. How does α = 0.01 compare with the value Adam is "
    "usually run with, and what does a step that is too large do to the training loss?")

# %% C3-noise points=1
assert (_ref_entry(diagnosis, "no_lr_schedule") is True
        or _ref_entry(diagnosis, "batch_size_too_small_noisy_gradients") is True), (
    "C3: why does the loss never settle, even late in training? Every update uses a "
    "gradient estimated from a mini-batch, and α stays the same to the end. Section 8.1 "
    "shows what a constant α does with noisy gradients, and which changes to the setup "
    "lower that noise or remove its effect.")

# %% C3-no-contradictions points=1
_contradicted = ("learning_rate_too_low", "batch_size_too_large", "dataset_too_small")
assert all(_ref_entry(diagnosis, _k) is False for _k in _contradicted), (
    "C3: at least one flag contradicts the setup described (10 million transactions, "
    "α = 0.01, batch size 32), or is missing. Every key must be True or False.")

# %% C3-fix-lr points=1
_lr = _ref_entry(fixes, "lr")
assert isinstance(_lr, _numbers.Real) and not isinstance(_lr, bool) and 1e-6 <= _lr < 0.01, (
    "C3: fixes['lr'] should be the learning rate you would actually train with (the peak "
    "rate, if you use a schedule): a positive number, below the one that is failing, "
    "and not so small that training stalls (at least 1e-6).")

# %% C3-fix-batch-size points=1
_b = _ref_entry(fixes, "batch_size")
_b_flagged = _ref_entry(diagnosis, "batch_size_too_small_noisy_gradients") is True
assert _ref_is_whole(_b) and 1 <= _b <= 65_536 and (_b > 32 or not _b_flagged), (
    "C3: fixes['batch_size'] should be a whole number of examples, at least 1 and at "
    "most 65,536 (what fits in memory); and if you flagged the batch as too small, "
    "larger than the current one (your fixes should match your diagnosis).")

# %% C3-fix-schedule points=1
_s = _ref_entry(fixes, "schedule")
_s_flagged = _ref_entry(diagnosis, "no_lr_schedule") is True
assert _s in ("none", "step", "exponential", "cosine", "warmup_cosine", "one_cycle",
              "reduce_on_plateau") and (
    _s != "none" or not _s_flagged or _ref_entry(fixes, "average_weights") is True), (
    "C3: fixes['schedule'] should be one of the names listed in the instructions; and if "
    "you flagged that the learning rate never decreases, your fixes should deal with "
    "that (your fixes should match your diagnosis).")

# %% C3-fix-warmup points=1
_ws = _ref_entry(fixes, "warmup_steps")
assert _ref_is_whole(_ws) and _ws >= 0 and (_ws > 0 or _ref_entry(diagnosis, "no_warmup") is False), (
    "C3: fixes['warmup_steps'] must be a whole number of steps, at least 0, and more "
    "than 0 if you flagged 'no_warmup' as a problem (your fixes should match your "
    "diagnosis).")
