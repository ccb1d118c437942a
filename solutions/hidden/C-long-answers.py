"""Checks of C-long-answers (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/C-long-answers.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()


# Checks of exercise C, long answers (see ``optbook.grade.checks`` for the format).
#
# Each probe sends the student's answer variables back; each judge compares them, in the
# grader, with the references computed here, which never enter the student's kernel.

import numbers


def real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


# ---------------------------------------------------------------------------- C1
# Three steps of momentum in the book's form (m_t = β m_(t-1) + (1 − β) g_t,
# w_t = w_(t-1) − α m_t) on f(w) = (w − 3)² from w_0 = 10, with α = 0.1, β = 0.9 and
# m_0 = 0; and m_1 for β = 0.99.
TRACE = {"g": [], "m": [], "w": []}
_w, _m = 10.0, 0.0
for _t in range(3):
    _g = 2.0 * (_w - 3.0)
    _m = 0.9 * _m + (1.0 - 0.9) * _g
    _w = _w - 0.1 * _m
    TRACE["g"].append(_g)
    TRACE["m"].append(_m)
    TRACE["w"].append(_w)
M1_BETA_099 = (1.0 - 0.99) * (2.0 * (10.0 - 3.0))


def close(values, i, want):
    """Whether ``values`` holds three numbers whose i-th is within 1e-6 of ``want``."""
    x = values[i] if isinstance(values, list) and len(values) == 3 else None
    return real(x) and abs(x - want) <= 1e-6


@checks.add("C1-g1", points=1, probe="g")
def _(values):
    assert close(values, 0, TRACE["g"][0]), (
        "C1: g1 is not right (checked to within 1e-6). g_1 is the gradient f'(w) = "
        "2(w − 3), taken at w_0, the point before step 1.")


@checks.add("C1-g2", points=1, probe="g")
def _(values):
    assert close(values, 1, TRACE["g"][1]), (
        "C1: g2 is not right (checked to within 1e-6). g_2 is the gradient f'(w) = "
        "2(w − 3), taken at w_1, the point before step 2. If an earlier value is "
        "wrong, this one will be too: fix the first wrong one first.")


@checks.add("C1-g3", points=1, probe="g")
def _(values):
    assert close(values, 2, TRACE["g"][2]), (
        "C1: g3 is not right (checked to within 1e-6). g_3 is the gradient f'(w) = "
        "2(w − 3), taken at w_2, the point before step 3. If an earlier value is "
        "wrong, this one will be too: fix the first wrong one first.")


@checks.add("C1-m1", points=1, probe="m")
def _(values):
    assert close(values, 0, TRACE["m"][0]), (
        "C1: m1 is not right (checked to within 1e-6). m_1 = β m_0 + (1 − β) g_1, "
        "with β = 0.9 and m_0 = 0 (the book's form, not PyTorch's).")


@checks.add("C1-m2", points=1, probe="m")
def _(values):
    assert close(values, 1, TRACE["m"][1]), (
        "C1: m2 is not right (checked to within 1e-6). m_2 = β m_1 + (1 − β) g_2, "
        "with β = 0.9 and m_0 = 0 (the book's form, not PyTorch's). If an earlier "
        "value is wrong, this one will be too: fix the first wrong one first.")


@checks.add("C1-m3", points=1, probe="m")
def _(values):
    assert close(values, 2, TRACE["m"][2]), (
        "C1: m3 is not right (checked to within 1e-6). m_3 = β m_2 + (1 − β) g_3, "
        "with β = 0.9 and m_0 = 0 (the book's form, not PyTorch's). If an earlier "
        "value is wrong, this one will be too: fix the first wrong one first.")


@checks.add("C1-w1", points=1, probe="w")
def _(values):
    assert close(values, 0, TRACE["w"][0]), (
        "C1: w1 is not right (checked to within 1e-6). w_1 = w_0 − α m_1, with α = "
        "0.1: the step goes along the average m_1, not along g_1.")


@checks.add("C1-w2", points=1, probe="w")
def _(values):
    assert close(values, 1, TRACE["w"][1]), (
        "C1: w2 is not right (checked to within 1e-6). w_2 = w_1 − α m_2, with α = "
        "0.1: the step goes along the average m_2, not along g_2. If an earlier value "
        "is wrong, this one will be too: fix the first wrong one first.")


@checks.add("C1-w3", points=1, probe="w")
def _(values):
    assert close(values, 2, TRACE["w"][2]), (
        "C1: w3 is not right (checked to within 1e-6). w_3 = w_2 − α m_3, with α = "
        "0.1: the step goes along the average m_3, not along g_3. If an earlier value "
        "is wrong, this one will be too: fix the first wrong one first.")


@checks.add("C1-a", points=1, probe="m1_smaller_than_g1")
def _(answer):
    assert answer is True, (
        "C1 (a): m starts at 0, so the first average mixes g_1 with that zero start. "
        "Compare the size of m_1 with that of g_1, and say True or False accordingly.")


@checks.add("C1-b", points=1, probe="m1_with_beta_099")
def _(m1):
    assert real(m1) and abs(m1 - M1_BETA_099) <= 1e-6, (
        "C1 (b): m1_with_beta_099 is m_1 for β = 0.99, everything else unchanged: m_1 "
        "= β m_0 + (1 − β) g_1 with m_0 = 0.")


# ---------------------------------------------------------------------------- C3
# The probe sends both dicts; entry() reads one (None if it is missing).
C3_PROBE = "[diagnosis, fixes]"


def entry(answers, which, key):
    """``answers[which][key]`` (which: 0 the diagnosis, 1 the fixes), or None."""
    part = answers[which] if isinstance(answers, list) and len(answers) == 2 else None
    return part.get(key) if isinstance(part, dict) else None


def whole(x):
    return isinstance(x, int) and not isinstance(x, bool)


@checks.add("C3-learning-rate", points=1, probe=C3_PROBE)
def _(answers):
    assert entry(answers, 0, "learning_rate_too_high") is True, (
        "C3: look at the learning rate. How does α = 0.01 compare with the value Adam "
        "is usually run with, and what does a step that is too large do to the "
        "training loss?")


@checks.add("C3-noise", points=1, probe=C3_PROBE)
def _(answers):
    assert (entry(answers, 0, "no_lr_schedule") is True
            or entry(answers, 0, "batch_size_too_small_noisy_gradients") is True), (
            "C3: why does the loss never settle, even late in training? Every update "
            "uses a gradient estimated from a mini-batch, and α stays the same to the "
            "end. Section 8.1 shows what a constant α does with noisy gradients, and "
            "which changes to the setup lower that noise or remove its effect.")


@checks.add("C3-no-contradictions", points=1, probe=C3_PROBE)
def _(answers):
    contradicted = ("learning_rate_too_low", "batch_size_too_large", "dataset_too_small")
    assert all(entry(answers, 0, key) is False for key in contradicted), (
        "C3: at least one flag contradicts the setup described (10 million "
        "transactions, α = 0.01, batch size 32), or is missing. Every key must be "
        "True or False.")


@checks.add("C3-fix-lr", points=1, probe=C3_PROBE)
def _(answers):
    lr = entry(answers, 1, "lr")
    assert real(lr) and 1e-6 <= lr < 0.01, (
        "C3: fixes['lr'] should be the learning rate you would actually train with "
        "(the peak rate, if you use a schedule): a positive number, below the one "
        "that is failing, and not so small that training stalls (at least 1e-6).")


@checks.add("C3-fix-batch-size", points=1, probe=C3_PROBE)
def _(answers):
    b = entry(answers, 1, "batch_size")
    flagged = entry(answers, 0, "batch_size_too_small_noisy_gradients") is True
    assert whole(b) and 1 <= b <= 65_536 and (b > 32 or not flagged), (
        "C3: fixes['batch_size'] should be a whole number of examples, at least 1 and "
        "at most 65,536 (what fits in memory); and if you flagged the batch as too "
        "small, larger than the current one (your fixes should match your diagnosis).")


SCHEDULES = ("none", "step", "exponential", "cosine", "warmup_cosine", "one_cycle", "reduce_on_plateau")


@checks.add("C3-fix-schedule", points=1, probe=C3_PROBE)
def _(answers):
    s, flagged = entry(answers, 1, "schedule"), entry(answers, 0, "no_lr_schedule") is True
    lowered = s != "none" or entry(answers, 1, "average_weights") is True
    assert s in SCHEDULES and (lowered or not flagged), (
        "C3: fixes['schedule'] should be one of the names listed in the instructions; "
        "and if you flagged that the learning rate never decreases, your fixes should "
        "deal with that (your fixes should match your diagnosis).")


@checks.add("C3-fix-warmup", points=1, probe=C3_PROBE)
def _(answers):
    steps = entry(answers, 1, "warmup_steps")
    assert whole(steps) and steps >= 0 and (steps > 0 or entry(answers, 0, "no_warmup") is False), (
        "C3: fixes['warmup_steps'] must be a whole number of steps, at least 0, and "
        "more than 0 if you flagged 'no_warmup' as a problem (your fixes should match "
        "your diagnosis).")
