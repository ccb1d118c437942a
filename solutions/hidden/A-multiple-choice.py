"""Checks of A-multiple-choice (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/A-multiple-choice.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()


# Checks of exercise A, multiple choice (see ``optbook.grade.checks`` for the format).
#
# Each probe sends the student's answer back; each judge compares it, in the grader, with
# the key below, which never enters the student's kernel.

def letter(answer):
    """The answer as a bare lower-case letter; None if it is not a string."""
    return answer.strip().lower() if isinstance(answer, str) else None


@checks.add("A1-check", points=1, probe="A1")
def _(answer):
    assert letter(answer) == "c", (
        "A1: one epoch is one pass over all N training examples. Mini-batch gradient "
        "descent makes one update per batch of B examples, so count how many batches one "
        "pass takes.")


@checks.add("A2-check", points=1, probe="A2")
def _(answer):
    assert letter(answer) == "c", (
        "A2: each step multiplies the weight of every older value by β, so a value from k "
        "steps back counts with weight (1-β)β^k. The effective window of such an average "
        "is about 1/(1-β) values (section 8.3). Work it out for β = 0.98.")


@checks.add("A3-check", points=1, probe="A3")
def _(answer):
    assert letter(answer) == "b", (
        "A3: Adam's moments start at m_0 = v_0 = 0, so in the first steps they are pulled "
        "toward that zero start: m_1 = (1-β₁)g_1 is only a tenth of the gradient. Look at "
        "what dividing by 1-β^t does, and how the factor behaves as t grows (section "
        "8.6).")


@checks.add("A4-check", points=1, probe="A4")
def _(answer):
    assert letter(answer) == "b", (
        "A4: section 8.1 ('Are powers of two special?') puts this advice to the test. A "
        "warp is a group of 32 threads that a GPU schedules together: ask whether that "
        "says anything about how many examples a batch holds. What a layer computes for a "
        "batch is a matrix product, and a GPU splits such products into tiles; and the "
        "chapter's own timing, on a CPU, compares each batch size with its power-of-two "
        "neighbour repeat by repeat, against the noise between repeats.")


@checks.add("A5-check", points=1, probe="A5")
def _(answer):
    assert letter(answer) == "b", (
        "A5: AdaGrad divides α by √G_t, where G_t is the sum of all squared gradients so "
        "far. Ask what happens to that sum, and so to the step size, over a long run, and "
        "what RMSprop puts in place of the sum (section 8.5).")


@checks.add("A6-check", points=1, probe="A6")
def _(answer):
    assert letter(answer) == "b", (
        "A6: Adam keeps two running averages per parameter: m, an average of the "
        "gradients, and v, an average of the squared gradients. Which optimizer of "
        "sections 8.4 and 8.5 introduced each of them?")


@checks.add("A7-check", points=1, probe="A7")
def _(answer):
    assert letter(answer) == "b", (
        "A7: large batches are trained with a large learning rate (the linear scaling "
        "rule), and at the start, with random weights, a step of that size can throw the "
        "model far off. The fix keeps the large rate but does not use it from the very "
        "first step (section 8.7 and Goyal et al., 2017).")


@checks.add("A8-check", points=1, probe="A8")
def _(answer):
    assert letter(answer) == "c", (
        "A8: count the arrays of the same size as the parameters that Adam keeps and "
        "plain SGD does not. The bias-correction factors 1-β₁^t and 1-β₂^t are two "
        "numbers for the whole model, not one per parameter (section 8.6).")


@checks.add("A9-check", points=1, probe="A9")
def _(answer):
    assert letter(answer) == "c", (
        "A9: cosine annealing sets α_t = α_min + ½(α_max − α_min)(1 + cos(πt/T)). Sketch "
        "it for t from 0 to T: where is it flat, where is it steepest, and does it ever "
        "jump (section 8.7)?")


@checks.add("A10-check", points=1, probe="A10")
def _(answer):
    assert letter(answer) == "c", (
        "A10: Wilson et al. (2017) compared adaptive methods, which scale each "
        "parameter's step by its own gradient history, with a method that does not. On "
        "their image classification benchmarks the adaptive ones reached a low training "
        "loss quickly but a worse test accuracy (section 8.13, 'Common mistakes and "
        "misconceptions').")
