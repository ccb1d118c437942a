"""Write the exercise notebooks and their reference solutions from one description.

    .venv/bin/python tools/make_exercises.py            # all exercises
    .venv/bin/python tools/make_exercises.py A-multiple-choice D1-adam-rosenbrock
    .venv/bin/python tools/make_exercises.py --keep-outputs D2-batch-size

For every exercise this writes

* ``exercises/<id>.ipynb``: the released notebook, answer cells holding templates, no
  outputs;
* ``solutions/<id>.ipynb``: the same cells with every answer filled in, executed in a
  fresh kernel (outputs kept).

``--keep-outputs`` rewrites the text of the named exercises but keeps the stored
solution's outputs instead of executing it; it refuses if any code cell changed other
than in its comments and layout (its syntax tree is compared). Use it
for D2, whose full experiment runs for a long time and whose outputs depend on the
machine.

The hidden tests, ``solutions/hidden/<id>.py``, are written by hand and are not touched
here. The cell format (``metadata.optbook``) is the one described in
``exercises/README.md``. ``tests/test_exercises.py`` checks the result.
"""

from __future__ import annotations

import ast
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
MARK = "# YOUR ANSWER (this cell is graded)"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    role: str  # instructions, setup, answer, test
    source: str
    id: str | None = None  # answer or test id
    points: int | None = None  # tests only
    solution: str | None = None  # answer cells only
    prose: bool = False  # markdown answer cells


def md(text: str) -> Cell:
    return Cell("markdown", "instructions", text.strip("\n"))


def setup(code: str) -> Cell:
    return Cell("code", "setup", code.strip("\n"))


def answer(answer_id: str, template: str, solution: str) -> Cell:
    """A code answer cell; both versions start with the graded-cell comment."""
    return Cell("code", "answer", f"{MARK}\n{template.strip(chr(10))}", id=answer_id,
                solution=f"{MARK}\n{solution.strip(chr(10))}")


def prose(answer_id: str, what: str, solution: str) -> Cell:
    """A markdown answer cell, collected for grading by hand."""
    head = f"**YOUR ANSWER ({what}, graded by hand)**"
    return Cell("markdown", "answer", f"{head}\n\n*Write your answer here.*", id=answer_id,
                solution=f"{head}\n\n{solution.strip(chr(10))}", prose=True)


def check(test_id: str, points: int, code: str) -> Cell:
    """A visible test cell: runs without an exception if and only if it passes."""
    return Cell("code", "test", code.strip("\n"), id=test_id, points=points)


def hidden_points(exercise_id: str) -> int:
    """The points of the checks a student never sees: those of the exercise's checks
    file (``solutions/hidden/<id>.py``, read by the grader's own loader) that are not a
    visible test this generator declares with ``check(...)``."""
    from optbook.grade.checks import load_checks

    visible = set(re.findall(r'\bcheck\("([^"]+)"', Path(__file__).read_text()))
    checks, _ = load_checks(ROOT / "solutions" / "hidden" / f"{exercise_id}.py")
    return sum(c.points for c in checks if c.id not in visible)


def how_to(points_line: str) -> Cell:
    return md(f"""
**How this notebook works.** {points_line}

* Answer in the cells that start with `{MARK}`. Only those cells are collected from
  your notebook when it is graded; every other cell, including the checks, comes from
  the notebook as it was handed out. So keep the variable and function names the cells
  ask for, and put everything an answer needs (imports, helper functions) inside its
  answer cell: cells you add yourself are not collected.
* Cells marked *graded by hand* are Markdown: double-click, replace the placeholder,
  and run the cell.
* The *self-check* cells let you test your answers before you submit. They are graded
  too, but passing them does not mean an answer is right: further checks run when your
  notebook is graded, and the feedback explains any that fail. On an unmodified
  notebook every check fails.
* Before submitting, run the whole notebook from the top (*Restart kernel and run
  all cells*) and make sure that no answer cell raises an error.
""")


# ======================================================================================
# A · multiple choice
# ======================================================================================
A_QUESTIONS = [
    ("A1", "Updates per epoch", r"""
Mini-batch gradient descent runs with batch size $B = 64$ on a training set of
$N = 6400$ examples. How many parameter updates does one epoch make?

* (a) 1
* (b) 64
* (c) 100
* (d) 6400"""),
    ("A2", "The window of an average", r"""
An exponentially weighted average $V_t = \beta V_{t-1} + (1-\beta)\,\theta_t$ uses
$\beta = 0.98$. Roughly how many of the most recent values does it average over?

* (a) 2
* (b) 10
* (c) 50
* (d) 98"""),
    ("A3", "Bias correction", r"""
Which problem does bias correction in Adam address?

* (a) Vanishing gradients in deep networks.
* (b) Inaccurate moment estimates in the first steps of training.
* (c) Overfitting on small data sets.
* (d) A learning rate that is too high."""),
    ("A4", "Powers of two", r"""
Batch sizes are often chosen as powers of two (32, 64, 128, 256), and the reason
usually given is that GPUs work in warps of 32 threads. What does section 8.1 ("Are
powers of two special?") conclude?

* (a) The reason holds: any other batch size leaves part of a warp idle, so 520 is
  clearly slower per example than 512.
* (b) It is a convention: what can matter on a GPU is how matrix products are cut into
  tiles, and a multiple of 8 such as 520 fits them as well as 512.
* (c) It holds on a CPU but not on a GPU, because a CPU's caches are organised in
  powers of two.
* (d) It holds because PyTorch pads every batch up to the next power of two.

The optional cell after your answer asks you to measure it yourself."""),
    ("A5", "AdaGrad's weakness", r"""
Which limitation of AdaGrad does RMSprop fix?

* (a) AdaGrad does not use gradient information.
* (b) AdaGrad's sum of squared gradients only grows, so its effective learning rate
  shrinks toward zero.
* (c) AdaGrad needs too much memory.
* (d) AdaGrad works only on convex losses."""),
    ("A6", "What Adam combines", r"""
Adam can be seen as the combination of which two techniques?

* (a) Batch gradient descent and stochastic gradient descent.
* (b) Momentum and RMSprop.
* (c) AdaGrad and Newton's method.
* (d) L1 and L2 regularisation."""),
    ("A7", "Early divergence with a large batch", r"""
A model trained with batch size 4096 diverges within its first 100 steps. What is the
most likely fix?

* (a) Switch from Adam to SGD.
* (b) Add a learning-rate warm-up over the first few hundred steps.
* (c) Increase the batch size to 8192.
* (d) Remove all regularisation."""),
    ("A8", "Adam's memory", r"""
How much extra memory per parameter does Adam need compared with plain SGD?

* (a) None: the same memory.
* (b) 1× extra: one buffer for the velocity.
* (c) 2× extra: the first moment $m$ and the second moment $v$.
* (d) 3× extra: $m$, $v$ and the bias-correction terms."""),
    ("A9", "The shape of cosine annealing", r"""
In cosine annealing, how does the learning rate change over training?

* (a) It decreases linearly from its maximum to its minimum.
* (b) It drops sharply at fixed intervals.
* (c) It follows half a cosine wave from maximum to minimum, decreasing smoothly.
* (d) It increases exponentially."""),
    ("A10", "Generalization in image classification", r"""
Wilson et al. (2017) compared optimizers on image classification. Which optimizer often
reached better test accuracy there, even though it trained more slowly?

* (a) Adam
* (b) RMSprop
* (c) SGD with momentum
* (d) AdaGrad"""),
]
# The reference answers live only in the solution notebook and the hidden tests.
A_SOLUTION = {"A1": "c", "A2": "c", "A3": "b", "A4": "b", "A5": "b", "A6": "b",
              "A7": "b", "A8": "c", "A9": "c", "A10": "c"}


def exercise_a() -> list[Cell]:
    cells = [md("""
# Exercises A · Multiple-choice questions

*Chapter 8, "Optimization".* Ten questions about the chapter, one point each. They use
the book's notation: $N$ is the number of training examples, $B$ the batch size,
$\\alpha$ the learning rate, $\\beta$, $\\beta_1$, $\\beta_2$ the decay rates of the
running averages.

**How to answer.** Each question has exactly one best option. In the answer cell under
the question, replace `None` by the letter of your option as a string: one of `"a"`,
`"b"`, `"c"` or `"d"` (capitals and surrounding spaces are ignored)."""),
             how_to("The ten answers are checked automatically, one point each; the "
                    "optional note on A4 is read by your instructor.")]
    for qid, title, text in A_QUESTIONS:
        cells.append(md(f"## {qid} · {title}\n{text}"))
        cells.append(answer(qid, f"{qid} = None", f'{qid} = "{A_SOLUTION[qid]}"'))
        if qid == "A4":
            cells.append(md("""
**A4, continued (optional, not auto-graded).** Run the timing cell of section 8.1,
"Are powers of two special?", on your own machine (on a GPU, if you have one). In one or
two sentences: which device did you use, and did any batch size differ from its
power-of-two neighbour by more than the noise between repeats?"""))
            cells.append(prose("A4-note", "A4 note", """
*(What a good answer contains; the numbers depend on your machine.)* It names the
device, quotes the largest median paired difference from the table and says whether
that difference kept its sign from one repeat to the next: only a difference larger
than the spread between repeats, in favour of the power of two, would support the
advice. On a GPU such a difference, if there is one, belongs to a size just above a
tile boundary (1030 against 1024), not to a multiple of 8 such as 520 or 1000; the
warp size of 32 says nothing about the batch size. Choose the batch size for memory,
throughput and the learning dynamics."""))
    names = ", ".join(f'"{q}"' for q, _, _ in A_QUESTIONS)
    cells.append(md("""
## Self-check: the format of your answers

The cell below checks that every answer is one of the four letters. It gives no points
and says nothing about whether an answer is right."""))
    cells.append(check("A-format", 0, f"""
# Format check (0 points): is every answer one of the letters a, b, c, d?
_not_yet = []
for _name in [{names}]:
    _value = globals().get(_name)
    if not (isinstance(_value, str) and _value.strip().lower() in ("a", "b", "c", "d")):
        _not_yet.append(f"{{_name}} = {{repr(_value)[:30]}}")
assert not _not_yet, ("Each answer must be one of the strings 'a', 'b', 'c', 'd'. "
                      "Not yet: " + ", ".join(_not_yet))
"""))
    return cells


# ======================================================================================
# B · short answers
# ======================================================================================
def exercise_b() -> list[Cell]:
    return [
        md(r"""
# Exercises B · Short-answer questions

*Chapter 8, "Optimization".* Five questions. Each has a **written part**, a Markdown
cell that your instructor grades by hand (it earns no automatic points), and a small
**computational part** in code that is checked automatically. The computational parts
use the book's notation: $N$ training examples, batch size $B$, learning rate
$\alpha$, decay rates $\beta$, $\beta_1$, $\beta_2$, and $\varepsilon$ (`eps`)."""),
        how_to(f"The computational parts are worth {hidden_points('B-short-answers') + 1} "
               "points in all, checked automatically; the written parts are graded by "
               "hand."),
        md(r"""
## B1 · Batch versus mini-batch

**Written.** In exactly three sentences, explain how batch gradient descent differs
from mini-batch gradient descent. Cover the effect on training speed and on gradient
noise."""),
        prose("B1-prose", "B1", r"""
Batch gradient descent computes the gradient over all $N$ examples before each update,
so it makes one exact but expensive update per epoch, while mini-batch gradient
descent estimates the gradient from $B$ examples and makes $\lceil N/B\rceil$ cheaper
updates per epoch. Because of that, mini-batch training makes far more progress per
pass over the data (section 8.1 measures this), and each batch is still large enough
to use vectorised hardware well. The price is noise: a mini-batch gradient is an
estimate whose variance shrinks like $1/B$ (its typical error like $1/\sqrt B$), so the
path wobbles, and with a constant learning rate the loss stops falling at a noise floor
until the learning rate is lowered."""),
        md(r"""
**Computed.** A training set has $N = 50{,}000$ examples. How many parameter updates
does one epoch make with batch gradient descent, with mini-batch gradient descent at
$B = 128$, and with stochastic gradient descent (one example per update)? When $B$ does
not divide $N$, the last, smaller batch is kept and gives an update of its own (as
PyTorch's `DataLoader` does by default). Give whole numbers."""),
        answer("B1-updates", """
B1_updates = {
    "batch": ...,
    "minibatch": ...,
    "stochastic": ...,
}""", """
import math

N, B = 50_000, 128
B1_updates = {
    "batch": 1,
    "minibatch": math.ceil(N / B),
    "stochastic": N,
}
B1_updates"""),
        md(r"""
## B2 · Momentum and oscillations

**Written.** Why does momentum help when the gradients oscillate? Explain with the
picture of a ball rolling downhill."""),
        prose("B2-prose", "B2", r"""
Momentum steps along $m_t$, a running average of the gradients, instead of along the
latest gradient. Like a heavy ball rolling down a valley, it keeps the velocity it has
built up: components of the gradient that flip sign from step to step (across a narrow
valley) cancel in the average, so the ball stops bouncing from wall to wall, while
components that keep pointing the same way (along the valley floor) add up, so the ball
picks up speed where the slope is consistent. With $\beta = 0.9$ the average covers
about the last ten gradients."""),
        md(r"""
**Computed.** Write `momentum_average(gradients, beta)`: given the gradients
$g_1, \dots, g_T$ (a list of numbers), return the list $[m_1, \dots, m_T]$ of the
chapter's momentum average,

$$
m_0 = 0, \qquad m_t = \beta\, m_{t-1} + (1-\beta)\, g_t .
$$

Then try it on an oscillating sequence ($+1, -1, +1, \dots$) and on a constant one,
and use what you see in your written answer."""),
        answer("B2-code", '''
def momentum_average(gradients, beta):
    """Return [m_1, ..., m_T] for the gradients g_1, ..., g_T."""
    raise NotImplementedError("B2: write momentum_average")''', '''
def momentum_average(gradients, beta):
    """Return [m_1, ..., m_T] for the gradients g_1, ..., g_T."""
    m, out = 0.0, []
    for g in gradients:
        m = beta * m + (1 - beta) * g
        out.append(m)
    return out


oscillating = momentum_average([(-1) ** t for t in range(30)], 0.9)
constant = momentum_average([1.0] * 30, 0.9)
print(f"oscillating gradients: |m_30| = {abs(oscillating[-1]):.3f}")
print(f"constant gradient:      m_30  = {constant[-1]:.3f}")'''),
        md(r"""
## B3 · Adam, step by step

**Written.** Write out the full Adam update for a single parameter $w$, labelling each
step (gradient, first moment, second moment, the two bias corrections, the update).
What is each step for?"""),
        prose("B3-prose", "B3", r"""
1. Gradient: $g_t = \partial J/\partial w$ at $w_{t-1}$, the direction of steepest
   ascent from the current point.
2. First moment: $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$, a running average of the
   gradients (momentum): it smooths the direction and damps oscillations.
3. Second moment: $v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$, a running average of the
   squared gradients (RMSprop): it measures the typical size of this parameter's
   gradient.
4. Bias corrections: $\hat m_t = m_t/(1-\beta_1^t)$ and
   $\hat v_t = v_t/(1-\beta_2^t)$. Both averages start at 0, so early on they are too
   small; dividing by $1-\beta^t$ undoes that, and the factor tends to 1 as $t$ grows.
5. Update: $w_t = w_{t-1} - \alpha\, \hat m_t/(\sqrt{\hat v_t} + \varepsilon)$. The
   step goes along the smoothed direction, scaled per parameter by the typical
   gradient size, so every parameter moves by at most about $\alpha$ per step;
   $\varepsilon$ avoids a division by zero."""),
        md(r"""
**Computed.** Write `adam_update(w, g, m, v, t, lr, beta1, beta2, eps)`: one Adam step
for a single parameter $w$ (a number) with gradient $g$, at step $t = 1, 2, \dots$.
`m` and `v` are the moments *before* the step. Return the tuple `(w, m, v)` *after* the
step, with `m` and `v` uncorrected (they are fed to the next call) and the bias
corrections used only inside the update. Add $\varepsilon$ to $\sqrt{\hat v_t}$, as
the book does. The self-check uses the worked example of section 8.8 ($f(w) = w^2$
from $w = 5$, $\alpha = 0.1$)."""),
        answer("B3-code", '''
def adam_update(w, g, m, v, t, lr, beta1, beta2, eps):
    """One Adam step for a single parameter; returns (w, m, v) after the step."""
    raise NotImplementedError("B3: write adam_update")''', '''
import math


def adam_update(w, g, m, v, t, lr, beta1, beta2, eps):
    """One Adam step for a single parameter; returns (w, m, v) after the step."""
    m = beta1 * m + (1 - beta1) * g            # first moment: average of gradients
    v = beta2 * v + (1 - beta2) * g * g        # second moment: average of squares
    m_hat = m / (1 - beta1 ** t)               # bias corrections
    v_hat = v / (1 - beta2 ** t)
    w = w - lr * m_hat / (math.sqrt(v_hat) + eps)
    return w, m, v'''),
        md(r"""
## B4 · Warm-up

**Written.** Why is a learning-rate warm-up important for large-batch training? What
can happen without it?"""),
        prose("B4-prose", "B4", r"""
Large batches are trained with a large learning rate (the linear scaling rule: $k$
times the batch, $k$ times $\alpha$), because each step averages more examples. At the
start, though, the weights are random, the gradients are large and change quickly, and
Adam's second-moment estimate rests on only a few gradients, so a full-size step can
throw the model into a region of very high loss. Without a warm-up the loss can spike
or become NaN in the first hundred steps, or the run settles in a poor region it never
leaves. A linear warm-up over the first few hundred steps lets the weights and the
optimizer's statistics settle before the full rate is used (Goyal et al., 2017)."""),
        md(r"""
**Computed.** Write `warmup_lr(t, lr_max, W)`: the learning rate of a linear warm-up
over $W$ epochs, then constant. Count the epochs from $t = 0$, as the book and PyTorch
do:

$$
\alpha_t = \alpha_{\max}\,\frac{t+1}{W} \quad (t < W), \qquad
\alpha_t = \alpha_{\max} \quad (t \ge W).
$$"""),
        answer("B4-code", '''
def warmup_lr(t, lr_max, W):
    """The learning rate at epoch t (t = 0, 1, 2, ...)."""
    raise NotImplementedError("B4: write warmup_lr")''', '''
def warmup_lr(t, lr_max, W):
    """The learning rate at epoch t (t = 0, 1, 2, ...)."""
    if t < W:
        return lr_max * (t + 1) / W
    return lr_max'''),
        md(r"""
## B5 · AdamW

**Written.** In three or four sentences, explain how AdamW differs from Adam and why
the difference matters for models trained with regularisation."""),
        prose("B5-prose", "B5", r"""
Adam with L2 regularisation (`torch.optim.Adam(weight_decay=λ)`) adds $\lambda w$ to the
gradient, so the decay term passes through $m$, $v$ and the division by
$\sqrt{\hat v}$. As a result weights with large gradients are hardly decayed and the
strength of the regularisation depends on the gradient history, not on $\lambda$
alone. AdamW decouples the decay: it shrinks every weight directly and takes the Adam
step with the loss gradient only, so the decay is the same for every weight. In
PyTorch's `AdamW` the shrink factor is $1 - \alpha\lambda$, so changing $\alpha$ also
changes the decay and the two are only partly independent; Loshchilov and Hutter's
version decays by $\eta_t\lambda$, with $\eta_t$ the schedule's multiplier, so their
$\lambda$ values do not carry over to PyTorch's form. In their experiments the decoupled
decay generalised better than L2 inside Adam, and AdamW is the usual choice for
transformers."""),
        md(r"""
**Computed.** A weight $w = 1.0$ has a loss gradient of exactly $0$ at the first step
($t = 1$, $m_0 = v_0 = 0$). Take $\alpha = 0.001$, $\lambda = 0.01$,
$\beta_1 = 0.9$, $\beta_2 = 0.999$, $\varepsilon = 10^{-8}$. What is $w$ after one
step of

* AdamW in PyTorch's form (decay $w \leftarrow w - \alpha\lambda w$, then the Adam
  step), and
* Adam with L2 regularisation, where $\lambda w$ is added to the gradient?

Give each to at least 7 decimal places (you may compute them in the cell)."""),
        answer("B5-numbers", """
B5_w_adamw = ...
B5_w_adam_l2 = ...""", """
import math

w, lam, lr, beta1, beta2, eps = 1.0, 0.01, 0.001, 0.9, 0.999, 1e-8

# AdamW: decay the weight, then an Adam step with the loss gradient (0)
g = 0.0
m_hat = (1 - beta1) * g / (1 - beta1)
v_hat = (1 - beta2) * g * g / (1 - beta2)
B5_w_adamw = (w - lr * lam * w) - lr * m_hat / (math.sqrt(v_hat) + eps)

# Adam + L2: the decay goes into the gradient, and through m and v
g = 0.0 + lam * w
m_hat = (1 - beta1) * g / (1 - beta1)
v_hat = (1 - beta2) * g * g / (1 - beta2)
B5_w_adam_l2 = w - lr * m_hat / (math.sqrt(v_hat) + eps)
print(f"AdamW: {B5_w_adamw:.9f}   Adam + L2: {B5_w_adam_l2:.9f}")"""),
        md("""
## Self-checks

These cells check the form of your computational answers and one known value. Passing
them does not mean that an answer is right."""),
        check("B-format", 0, """
# Format check (0 points): B1's three counts and B5's two numbers are filled in.
import numbers
_keys = {"batch", "minibatch", "stochastic"}
assert isinstance(B1_updates, dict) and set(B1_updates) == _keys, (
    "B1_updates must be a dict with exactly the keys 'batch', 'minibatch', "
    "'stochastic'.")
assert all(isinstance(_n, numbers.Integral) and not isinstance(_n, bool)
           for _n in B1_updates.values()), (
    "B1: each count must be a whole number (an int).")
assert all(isinstance(_x, numbers.Real) and not isinstance(_x, bool)
           for _x in (B5_w_adamw, B5_w_adam_l2)), "B5: both answers must be numbers."
"""),
        check("B2-form", 0, """
# Form check (0 points): one value per gradient, and zero gradients average to zero.
_out = momentum_average([0.0, 0.0, 0.0, 0.0], 0.9)
assert len(_out) == 4, "momentum_average must return one value for each gradient."
assert all(abs(float(_x)) < 1e-15 for _x in _out), "Zero gradients must give m_t = 0."
"""),
        check("B3-worked-example", 1, """
# The worked example of section 8.8: f(w) = w^2, w = 5, alpha = 0.1, so the first
# gradient is g = 10. The first Adam step moves w to 4.9 (to about 1e-6).
_w, _m, _v = adam_update(5.0, 10.0, 0.0, 0.0, 1, 0.1, 0.9, 0.999, 1e-8)
assert abs(float(_w) - 4.9) < 1e-6, (
    f"After one step w should be about 4.9, not {float(_w)!r}.")
"""),
        check("B4-shape", 0, """
# Shape check (0 points): the rate never falls, never exceeds lr_max, and is lr_max
# from t = W on.
_rates = [float(warmup_lr(_t, 0.5, 8)) for _t in range(20)]
assert all(0 < _r <= 0.5 for _r in _rates), "Every rate must lie in (0, lr_max]."
assert all(_a <= _b for _a, _b in zip(_rates, _rates[1:])), (
    "The rate must never decrease.")
assert all(_r == 0.5 for _r in _rates[8:]), "From t = W on the rate must be lr_max."
"""),
    ]


# ======================================================================================
# C · long answers
# ======================================================================================
C3_DIAGNOSES = [
    ("learning_rate_too_high", "the learning rate is too large for this problem"),
    ("learning_rate_too_low", "the learning rate is too small"),
    ("batch_size_too_small_noisy_gradients",
     "the batch is too small, so each gradient estimate is very noisy"),
    ("batch_size_too_large", "the batch is too large"),
    ("no_lr_schedule", "the learning rate never decreases during training"),
    ("no_warmup", "the first steps run at the full learning rate"),
    ("dataset_too_small", "there is too little data for the model"),
    ("class_imbalance", "fraud is rare, so most batches hold no positive example"),
    ("unscaled_features", "the input features are on very different scales"),
]
C3_SCHEDULES = ["none", "step", "exponential", "cosine", "warmup_cosine", "one_cycle",
                "reduce_on_plateau"]


def exercise_c() -> list[Cell]:
    keys_table = "\n".join(f"| `{k}` | {text} |" for k, text in C3_DIAGNOSES)
    diag_template = "\n".join(f'    "{k}": ...,' for k, _ in C3_DIAGNOSES)
    diag_solution = {"learning_rate_too_high": True, "learning_rate_too_low": False,
                     "batch_size_too_small_noisy_gradients": True,
                     "batch_size_too_large": False, "no_lr_schedule": True,
                     "no_warmup": True, "dataset_too_small": False,
                     "class_imbalance": True, "unscaled_features": False}
    diag_solution_src = "\n".join(f'    "{k}": {diag_solution[k]},' for k, _ in C3_DIAGNOSES)
    schedules = ", ".join(f'`"{s}"`' for s in C3_SCHEDULES)
    keys_list = "\n".join(f'    "{k}",' for k, _ in C3_DIAGNOSES)
    schedules_list = "\n".join("    " + ", ".join(f'"{s}"' for s in part) + ","
                               for part in (C3_SCHEDULES[:4], C3_SCHEDULES[4:]))
    return [
        md(r"""
# Exercises C · Long-answer questions

*Chapter 8, "Optimization".* Three questions with marks: C1 (15 marks), C2 (20 marks)
and C3 (15 marks). The written answers are graded by hand. C1's numbers and C3's
diagnosis also go into code cells, which are checked automatically."""),
        how_to(f"The code parts of C1 and C3 are worth {hidden_points('C-long-answers')} "
               "points in all, checked "
               "automatically; the written answers carry the marks above and are "
               "graded by hand."),
        md(r"""
## C1 · Momentum by hand (15 marks)

Minimise $f(w) = (w - 3)^2$ with momentum, starting from $w_0 = 10$ with
$\alpha = 0.1$ and $\beta = 0.9$. Use the chapter's form of momentum,

$$
m_0 = 0, \qquad m_t = \beta\, m_{t-1} + (1-\beta)\, g_t, \qquad
w_t = w_{t-1} - \alpha\, m_t ,
$$

where $g_t = f'(w_{t-1})$. (Some texts write the velocity $m$ as $V$.) PyTorch's
`torch.optim.SGD(momentum=β)` uses a different form, without the factor $1-\beta$
(section 8.4, "Momentum in PyTorch"); do **not** use that one here.

Trace three complete iterations, showing $g_t$, $m_t$ and $w_t$ at each step. Then
answer:

(a) Is $m_1$ larger or smaller than the raw gradient $g_1$? Why?

(b) What would change if $\beta = 0.99$?"""),
        prose("C1-prose", "C1 trace, (a) and (b)", r"""
$f'(w) = 2(w-3)$.

| $t$ | $g_t = 2(w_{t-1}-3)$ | $m_t = 0.9\,m_{t-1} + 0.1\,g_t$ | $w_t = w_{t-1} - 0.1\,m_t$ |
|---|---|---|---|
| 1 | $2(10-3) = 14$ | $0 + 1.4 = 1.4$ | $10 - 0.14 = 9.86$ |
| 2 | $2(9.86-3) = 13.72$ | $1.26 + 1.372 = 2.632$ | $9.86 - 0.2632 = 9.5968$ |
| 3 | $2(9.5968-3) = 13.1936$ | $2.3688 + 1.31936 = 3.68816$ | $9.5968 - 0.368816 = 9.227984$ |

(a) Smaller: $m_1 = 1.4$ against $g_1 = 14$. Because $m_0 = 0$, the first average is
$(1-\beta) g_1$, a tenth of the gradient: the average is biased toward its zero start.
It catches up over the next steps ($m_t$ grows while $g_t$ shrinks); bias correction,
$\hat m_t = m_t/(1-\beta^t)$, would remove the bias ($\hat m_1 = g_1$).

(b) With $\beta = 0.99$ the average covers about 100 gradients instead of 10. The first
steps are ten times smaller still ($m_1 = 0.01 \cdot 14 = 0.14$, $w_1 = 9.986$), so the
start is even slower and the bias toward zero lasts about 100 steps. Once $m$ has built
up, it reacts slowly when the gradient changes sign, so the iterate overshoots $w = 3$
far and oscillates around it for a long time before settling."""),
        md(r"""
**C1, the numbers.** Fill in your trace as lists of three numbers each:
`g = [g1, g2, g3]`, `m = [m1, m2, m3]`, `w = [w1, w2, w3]`. Give exact values (they
have at most six decimals) or compute them in the cell. Each value is checked to
within $10^{-6}$. For (a), set `m1_smaller_than_g1` to `True` or `False`; for (b), give
`m1_with_beta_099`, the value of $m_1$ if $\beta = 0.99$ (everything else unchanged)."""),
        answer("C1-numbers", """
g = [..., ..., ...]
m = [..., ..., ...]
w = [..., ..., ...]
m1_smaller_than_g1 = ...
m1_with_beta_099 = ...""", """
alpha, beta = 0.1, 0.9
g, m, w = [], [], []
w_prev, m_prev = 10.0, 0.0
for t in range(1, 4):
    g_t = 2 * (w_prev - 3)
    m_t = beta * m_prev + (1 - beta) * g_t
    w_t = w_prev - alpha * m_t
    g.append(g_t); m.append(m_t); w.append(w_t)
    w_prev, m_prev = w_t, m_t
    print(f"t={t}: g={g_t:.6f}  m={m_t:.6f}  w={w_t:.6f}")

m1_smaller_than_g1 = abs(m[0]) < abs(g[0])
m1_with_beta_099 = (1 - 0.99) * 2 * (10 - 3)"""),
        md(r"""
## C2 · Adam against SGD with momentum (20 marks)

Compare Adam with SGD plus momentum along five dimensions:

1. how fast the training loss falls;
2. the final test accuracy;
3. sensitivity to the learning rate;
4. memory overhead;
5. suitability for different tasks (vision against NLP).

For each dimension give a concrete example or numerical evidence from published
research (section 8.14, "Summary and references", is a starting point). End with a
recommendation on when to use each optimizer."""),
        prose("C2-prose", "C2", r"""
1. **Training loss.** Adam usually lowers the training loss faster early on: its
   per-parameter step sizes handle badly scaled and sparse gradients without tuning.
   Kingma and Ba (2015) show Adam ahead of SGD with Nesterov momentum on MNIST logistic
   regression, multilayer networks and CIFAR-10 CNNs in training cost per epoch.
2. **Test accuracy.** On image classification well-tuned SGD with momentum often ends
   with better test accuracy. Wilson et al. (2017) report that on CIFAR-10 (VGG) the
   adaptive methods reached a similar or lower training loss but about 1–2 percentage
   points worse test accuracy, and they construct a problem where adaptive methods
   generalise arbitrarily badly.
3. **Learning-rate sensitivity.** Adam's defaults ($\alpha = 10^{-3}$, $\beta_1 = 0.9$,
   $\beta_2 = 0.999$) work across many problems, while SGD's best learning rate varies
   by orders of magnitude between problems and usually needs a schedule (Goyal et al.,
   2017, tune SGD's rate, warm-up and step decay carefully to train ResNet-50 on
   ImageNet in an hour). Adam is still sensitive near its upper limit and needs
   warm-up for transformers.
4. **Memory.** SGD with momentum keeps one buffer per parameter ($m$); Adam keeps two
   ($m$ and $v$). For a model with 1 billion parameters in float32 that is 4 GB against
   8 GB of optimizer state, on top of the weights and gradients.
5. **Tasks.** Vision (ResNets on ImageNet) is still commonly trained with SGD plus
   momentum and step or cosine schedules, as in Goyal et al. (2017); NLP models such as
   BERT and GPT are trained with Adam or AdamW with warm-up (Loshchilov and Hutter, 2019,
   show AdamW's decoupled decay closing much of Adam's generalisation gap).

**Recommendation.** Use Adam (AdamW with weight decay) as the default for prototyping,
for NLP and transformers, and for sparse or badly scaled gradients. Use SGD with
momentum and a tuned schedule for vision models when the best final test accuracy
matters and there is budget to tune the learning rate, or when memory is tight."""),
        md(r"""
## C3 · Diagnosing a training run (15 marks)

A team at an Indian fintech company is training a fraud-detection model on 10 million
transactions. They use Adam with $\alpha = 0.01$, batch size 32, no learning-rate
schedule and no warm-up. The training loss oscillates wildly and never settles.

**Written.** Diagnose at least three possible problems with this setup. For each one,
propose a specific fix and justify it."""),
        prose("C3-prose", "C3", r"""
*There is more than one good answer: any diagnosis and fix consistent with sections
8.1, 8.6 and 8.7 earns the marks. This one covers four problems.*

1. **Learning rate too high.** $\alpha = 0.01$ is ten times Adam's usual default. Adam
   moves every parameter by up to about $\alpha$ per step whatever the gradient's size,
   so near a minimum it keeps jumping across it. Fix: $\alpha = 10^{-3}$ (or find it
   with a short range test between $3\cdot10^{-4}$ and $3\cdot10^{-3}$).
2. **A constant learning rate on noisy gradients: the noise floor.** Every step uses a
   gradient estimated from a mini-batch, whose typical error shrinks only like
   $1/\sqrt B$ (section 8.1). With $\alpha$ constant, the steps carry that noise to the
   end of training, so the loss stops falling at a level set by the noise and keeps
   fluctuating around it: it "never settles". Fix: lower $\alpha$ during training, as
   section 8.1 recommends, for instance with a cosine decay to about $\alpha/100$ over
   the run (section 8.7), or reduce it on a plateau. Averaging the weights over the last
   part of training has a similar effect.
3. **A small batch.** 32 transactions out of 10 million give noisy gradients, and since
   fraud is rare most batches contain no fraud at all, so the loss jumps whenever one
   does. A larger batch lowers the noise floor, though it does not remove it:
   $B = 1024$ makes the typical gradient error $\sqrt{32} \approx 5.7$ times smaller,
   and for a small model on a GPU one step on 1024 examples costs far less than 32
   steps on 32. When $B$ changes, check $\alpha$ again (section 8.1's scaling rules).
   Stratified or weighted sampling puts positive examples into every batch.
4. **No warm-up.** The first steps at full rate, with Adam's $v$ estimated from only a
   few noisy gradients, can throw the weights far off. Fix: a linear warm-up over the
   first 1000 steps (about a tenth of an epoch at $B = 1024$), which the warm-up +
   cosine schedule includes."""),
        md(f"""
**C3, in structured form.** Record your diagnosis in the dict `diagnosis`, with
**every** key below set to `True` (this is a problem here) or `False` (it is not, or
there is no sign of it in the description):

| key | meaning when `True` |
|---|---|
{keys_table}

Then record the setup you would change to in `fixes`:

* `"lr"`: the learning rate you would train with (the peak rate if you use a schedule),
  a number;
* `"batch_size"`: the batch size you would use, a whole number;
* `"schedule"`: one of {schedules};
* `"warmup_steps"`: the length of the warm-up in steps, a whole number (0 for none);
* `"average_weights"`: `True` if you would also keep an average of the weights over
  the last part of training (section 8.3's exponentially weighted average, applied to
  $\\theta$) and use that average as the trained model, otherwise `False`.

Your suggestions are checked for being sensible and consistent with your diagnosis,
not against one exact value: there is more than one good way to calm this run."""),
        answer("C3-structured", f"""
diagnosis = {{
{diag_template}
}}
fixes = {{
    "lr": ...,
    "batch_size": ...,
    "schedule": ...,
    "warmup_steps": ...,
    "average_weights": ...,
}}""", f"""
diagnosis = {{
{diag_solution_src}
}}
fixes = {{
    "lr": 1e-3,
    "batch_size": 1024,
    "schedule": "warmup_cosine",
    "warmup_steps": 1000,
    "average_weights": False,
}}"""),
        md("""
## Self-checks

These cells check the form of your code answers. They give no points, and passing them
does not mean that an answer is right."""),
        check("C1-format", 0, """
# Format check (0 points): three numbers per list, a bool and a number.
import numbers
import numpy as np
for _name in ("g", "m", "w"):
    _seq = globals().get(_name)
    assert isinstance(_seq, (list, tuple, np.ndarray)) and len(_seq) == 3, (
        f"{_name} must be a list of three numbers.")
    assert all(isinstance(_x, numbers.Real) and not isinstance(_x, bool)
               for _x in _seq), f"Replace every ... in {_name} by a number."
assert isinstance(m1_smaller_than_g1, (bool, np.bool_)), (
    "m1_smaller_than_g1 must be True or False.")
assert (isinstance(m1_with_beta_099, numbers.Real)
        and not isinstance(m1_with_beta_099, bool)), (
    "m1_with_beta_099 must be a number.")
"""),
        check("C3-format", 0, f"""
# Format check (0 points): every diagnosis key is True or False; fixes has the
# five keys, with values of the right kind.
import numbers
_keys = [
{keys_list}
]
assert isinstance(diagnosis, dict) and sorted(diagnosis) == sorted(_keys), (
    "diagnosis must have exactly the keys listed in the table, no more and no fewer.")
_not_bool = [_k for _k in _keys if not isinstance(diagnosis[_k], bool)]
assert not _not_bool, "Set these to True or False: " + ", ".join(_not_bool)
_fix_keys = {{"lr", "batch_size", "schedule", "warmup_steps", "average_weights"}}
assert isinstance(fixes, dict) and set(fixes) == _fix_keys, (
    "fixes must have exactly the keys 'lr', 'batch_size', 'schedule', 'warmup_steps' "
    "and 'average_weights'.")
assert isinstance(fixes["lr"], numbers.Real) and not isinstance(fixes["lr"], bool), (
    "fixes['lr'] must be a number.")
for _k in ("batch_size", "warmup_steps"):
    assert (isinstance(fixes[_k], numbers.Integral)
            and not isinstance(fixes[_k], bool)), (
        f"fixes[{{_k!r}}] must be a whole number.")
assert fixes["schedule"] in [
{schedules_list}
], (
    "fixes['schedule'] must be one of the names listed in the instructions.")
assert isinstance(fixes["average_weights"], bool), (
    "fixes['average_weights'] must be True or False.")
"""),
    ]


# ======================================================================================
# D1 · Adam on Rosenbrock
# ======================================================================================
def exercise_d1() -> list[Cell]:
    return [
        md(r"""
# Exercise D1 · Adam from scratch, with logging

*Chapter 8, "Optimization".* Implement Adam as a class, with full bias correction, and
use it to minimise the Rosenbrock function

$$
f(x, y) = (1 - x)^2 + 100\,(y - x^2)^2
$$

from $(x_0, y_0) = (-1, 1)$ with $\alpha = 0.001$ (and $\beta_1 = 0.9$,
$\beta_2 = 0.999$, $\varepsilon = 10^{-8}$) for 10,000 iterations. Log
$x, y, f(x, y), \hat m_x, \hat m_y, \hat v_x, \hat v_y$ at every iteration, and draw
the path on a contour plot of the function."""),
        how_to("Two self-checks are worth 1 point each; further checks worth "
               f"{hidden_points('D1-adam-rosenbrock')} points run when your notebook is "
               "graded."),
        md(r"""
## The algorithm

For parameters $\theta$ (here $\theta = (x, y)$) with gradient $g_t$ at step
$t = 1, 2, \dots$, Adam keeps two running averages, both starting at zero:

$$
m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad
\hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t},
$$

$$
\theta_t = \theta_{t-1} - \alpha\, \frac{\hat m_t}{\sqrt{\hat v_t} + \varepsilon}
\qquad \text{(elementwise).}
$$

Compute in float64 (NumPy's default). The setup cell below imports
`optbook.surfaces.rosenbrock`: `rosenbrock.f(x, y)` is $f$ and `rosenbrock.grad(x, y)`
returns $(\partial f/\partial x, \partial f/\partial y)$. You may write the gradient
yourself instead."""),
        setup("""
import numpy as np
import matplotlib.pyplot as plt
from optbook.surfaces import rosenbrock

START = (-1.0, 1.0)      # (x_0, y_0)
LR = 0.001               # alpha
STEPS = 10_000
COLUMNS = ("x", "y", "f", "m_hat_x", "m_hat_y", "v_hat_x", "v_hat_y")"""),
        md(r"""
## 1 · The class

Write a class `Adam` that works for a parameter array of any length:

* `opt = Adam(lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8)` (these defaults);
* `theta = opt.step(theta, g)` takes the current parameters and their gradient (NumPy
  arrays of the same shape), makes one Adam step and returns the new parameters;
* after each call, `opt.m_hat` and `opt.v_hat` hold the bias-corrected moments
  $\hat m_t$ and $\hat v_t$ of that step.

The class keeps its own step counter $t$ and its moments $m$, $v$ between calls. Check
it against `torch.optim.Adam` or the book's `optbook.optimizers.Adam` on a few steps
before the long run (in a cell of your own; it is not collected)."""),
        answer("D1-class", '''
class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
        raise NotImplementedError("D1: write Adam.__init__")

    def step(self, theta, g):
        """One Adam step: return the new parameters; set self.m_hat and self.v_hat."""
        raise NotImplementedError("D1: write Adam.step")''', '''
class Adam:
    """Adam with bias correction, for a NumPy array of parameters."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.t = 0
        self.m = self.v = None          # created at the first step, with theta's shape
        self.m_hat = self.v_hat = None

    def step(self, theta, g):
        """One Adam step: return the new parameters; set self.m_hat and self.v_hat."""
        theta = np.asarray(theta, dtype=float)
        g = np.asarray(g, dtype=float)
        if self.m is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        self.m_hat = self.m / (1 - self.beta1 ** self.t)
        self.v_hat = self.v / (1 - self.beta2 ** self.t)
        return theta - self.lr * self.m_hat / (np.sqrt(self.v_hat) + self.epsilon)'''),
        md(r"""
## 2 · The run and its log

Run 10,000 iterations from `START` with `LR` and fill `log`, a NumPy array of shape
`(10000, 7)` whose columns are, in this order, `COLUMNS`:
$x, y, f(x, y), \hat m_x, \hat m_y, \hat v_x, \hat v_y$.

Row $t-1$ (Python's index) describes iteration $t$: the point $(x_t, y_t)$ *after* the
$t$-th update, $f$ at that point, and the bias-corrected moments $\hat m_t$,
$\hat v_t$ used by that update. So the first row is the state after the first step, and
the starting point itself is not a row."""),
        answer("D1-run", """
log = ...""", """
opt = Adam(lr=LR)
theta = np.array(START)
log = np.empty((STEPS, len(COLUMNS)))
for k in range(STEPS):
    g = np.array(rosenbrock.grad(*theta), dtype=float)
    theta = opt.step(theta, g)
    x, y = theta
    log[k] = (x, y, rosenbrock.f(x, y), *opt.m_hat, *opt.v_hat)

for t in (1, 10, 100, 1000, 10_000):
    x, y, f = log[t - 1, :3]
    print(f"t = {t:>6}: (x, y) = ({x:+.6f}, {y:+.6f})   f = {f:.3e}")"""),
        md(r"""
## 3 · The path on a contour plot

Draw the contours of the Rosenbrock function (for instance over $-2 \le x \le 2$,
$-1 \le y \le 3$, with logarithmically spaced levels) and the path of your run on top,
as one line through the logged points. Mark the start and the minimum $(1, 1)$ if you
like. Keep the figure in the variable `fig` (for example from
`fig, ax = plt.subplots()`). `optbook.book.surface_figures.contour_figure(rosenbrock, {"Adam":
points})` draws such a figure for an array of points of shape `(n, 2)`."""),
        answer("D1-figure", """
fig = ...""", """
from optbook.book.surface_figures import contour_figure

path = np.vstack([START, log[:, :2]])          # the start, then one point per iteration
fig = contour_figure(rosenbrock, {"Adam, α = 0.001": path},
                     title="Adam on the Rosenbrock function, 10,000 steps")"""),
        md("""
## Self-checks

Two checks you can run now, one point each. The graded run checks more: your class on
another problem, the log at several iterations, the final point and the figure."""),
        check("D1-log-shape", 1, """
# log is a float array with one row per iteration and the 7 columns.
import numpy as np
assert isinstance(log, np.ndarray), (
    f"log must be a NumPy array, not {type(log).__name__}.")
assert log.shape == (10_000, 7), f"log must have shape (10000, 7), not {log.shape}."
assert np.issubdtype(log.dtype, np.floating), "log must hold floating-point numbers."
"""),
        check("D1-first-row", 1, """
# The first row: after one step from (-1, 1). There the gradient is (-4, 0), and with
# bias correction m_hat = g and v_hat = g**2 at t = 1, so x moves by almost exactly
# alpha and y does not move.
import numpy as np
_x1 = -1.0 + 0.001 * 4.0 / (4.0 + 1e-8)
_f1 = (1 - _x1) ** 2 + 100 * (1.0 - _x1 ** 2) ** 2
_expected = [_x1, 1.0, _f1, -4.0, 0.0, 16.0, 0.0]
_first = np.asarray(log, dtype=float)[0]
_names = ("x", "y", "f", "m_hat_x", "m_hat_y", "v_hat_x", "v_hat_y")
_wrong = [name for name, a, b in zip(_names, _first, _expected)
          if not np.isclose(a, b, rtol=1e-9, atol=1e-12)]
assert not _wrong, ("The first row of log is wrong in the columns " + ", ".join(_wrong)
                    + ". It should hold the state after the first update.")
"""),
    ]


# ======================================================================================
# D2 · the batch-size experiment
# ======================================================================================
def exercise_d2() -> list[Cell]:
    return [
        md(r"""
# Exercise D2 · How the batch size changes training

*Chapter 8, "Optimization".* Train the same small network on **Fashion-MNIST** (an
MNIST-format data set: 28 × 28 images of clothing in ten classes, stored exactly like
MNIST's handwritten digits) with Adam ($\alpha = 0.001$) and nine batch sizes,
$B = 16, 32, 64, \dots, 4096$. For each batch size record the training loss of every
epoch, the test accuracy after the last epoch (20 epochs) and the time each epoch
takes. Then draw three plots and explain what you see in about 200 words.

The network is a multilayer perceptron $784 \to 256 \to 128 \to 10$: the 28 × 28 image
flattened to 784 inputs, two hidden layers of 256 and 128 ReLU units, and 10 outputs
(one logit per class), trained with the cross-entropy loss."""),
        how_to("Two self-checks are worth 1 point each; further checks worth "
               f"{hidden_points('D2-batch-size')} points run when your notebook is "
               "graded. The analysis is graded by hand (10 marks)."),
        md(r"""
## The data, and the grader's short setting

The setup cell loads the data with `optbook.training.idx.load_mnist()`, which works offline. It
reads MNIST-format files from a folder you name (`load_mnist("path/to/folder")`, or the
environment variable `OPTBOOK_MNIST_DIR`); failing that, it downloads the MNIST digits
with torchvision when that is installed and you are online; and otherwise it uses
Debian's `dataset-fashion-mnist` package: Fashion-MNIST, 60,000 training and 10,000
test images of 28 × 28 pixels, which is what the reference solution ran on. The
exercise works the same on either data set, but the digits are easier: a network like
this one reaches about 98 % test accuracy on MNIST and about 88–89 % on Fashion-MNIST.
The cell prints which data set it found; say which one you used in your analysis.

The full experiment is your default: all 60,000 training images, `EPOCHS = 20`. It
takes a while on a laptop CPU (small batches make thousands of updates per epoch), so
develop with a subset first. When your notebook is graded, the setup cell switches to a
short setting on its own (`OPTBOOK_GRADING=1`: 4,096 training and 2,000 test images,
2 epochs), so write your code in terms of `EPOCHS`, `BATCH_SIZES` and the data
variables rather than fixed numbers."""),
        setup("""
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from optbook.book.device import pick_device
from optbook.training.idx import load_mnist

GRADING = os.environ.get("OPTBOOK_GRADING") == "1"     # set by the grader: short run
BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
LR = 0.001                                             # alpha, for Adam
EPOCHS = 2 if GRADING else 20
N_TRAIN, N_TEST = (4096, 2000) if GRADING else (None, None)   # None: every image

data = load_mnist()
X_train, y_train, X_test, y_test = (torch.from_numpy(a)
                                    for a in data.arrays(N_TRAIN, N_TEST))
device = pick_device()
print(f"{data.name} ({data.source}): {len(X_train):,} training and "
      f"{len(X_test):,} test images of {X_train.shape[1]} pixels in [0, 1]; "
      f"{EPOCHS} epochs on {device}")"""),
        md(r"""
## 1 · The network

Write `make_model(seed=0)`, which returns a new, freshly initialised network
$784 \to 256 \to 128 \to 10$ with ReLU activations between the linear layers and no
activation after the last one (it returns logits; `nn.CrossEntropyLoss` applies the
softmax). Call `torch.manual_seed(seed)` first, so the same seed gives the same initial
weights: then every batch size starts from the same point, which makes the comparison
fair."""),
        answer("D2-model", '''
def make_model(seed=0):
    raise NotImplementedError("D2: build the 784 → 256 → 128 → 10 network")''', '''
def make_model(seed=0):
    """The 784 → 256 → 128 → 10 perceptron with ReLUs; it returns logits."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(),
                         nn.Linear(256, 128), nn.ReLU(),
                         nn.Linear(128, 10))'''),
        md(r"""
## 2 · One training run

Write `train_one(batch_size, epochs, X, y, X_test, y_test, seed=0)`. It builds
`make_model(seed)`, trains it on `(X, y)` with `torch.optim.Adam(…, lr=LR)` (the other
hyperparameters at their defaults) and mini-batches of `batch_size` examples, in a new
random order every epoch (the last batch of an epoch may be smaller), and returns a
dictionary with

* `"loss"`: a list of `epochs` numbers, the mean training loss of each epoch (the
  average of the mini-batch losses, weighted by the batch sizes);
* `"accuracy"`: the fraction of `X_test` the trained network classifies correctly (the
  class with the largest logit), a number between 0 and 1;
* `"seconds"`: a list of `epochs` numbers, the wall-clock time of each epoch's training;
* `"model"`: the trained network.

Use `device` (the GPU when there is one) for the model and the data."""),
        answer("D2-train", '''
def train_one(batch_size, epochs, X, y, X_test, y_test, seed=0):
    raise NotImplementedError("D2: train one network and return its record")''', '''
def test_accuracy(model, X_test, y_test):
    """The fraction of test images whose largest logit is the right class."""
    with torch.no_grad():
        predicted = model(X_test.to(device)).argmax(dim=1).cpu()
    return (predicted == y_test).float().mean().item()


def train_one(batch_size, epochs, X, y, X_test, y_test, seed=0):
    """Adam(α = LR) with mini-batches of `batch_size`, reshuffled every epoch."""
    model = make_model(seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(seed)
    X, y = X.to(device), y.to(device)
    losses, seconds = [], []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(X), generator=shuffle).to(device)
        total = 0.0
        for first in range(0, len(X), batch_size):
            batch = order[first:first + batch_size]
            loss = loss_fn(model(X[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
        losses.append(total / len(X))
    return {"loss": losses, "accuracy": test_accuracy(model, X_test, y_test),
            "seconds": seconds, "model": model}'''),
        md(r"""
## 3 · The experiment

Fill `results`, a dictionary that maps each batch size in `BATCH_SIZES` to the record
`train_one(B, EPOCHS, X_train, y_train, X_test, y_test)` returns. Print a small table
as you go (batch size, updates per epoch, final training loss, test accuracy, seconds
per epoch): the full run takes long enough that you will want to see progress."""),
        answer("D2-run", """
results = ...""", """
results = {}
print(" batch  updates/epoch  final loss  test accuracy  s/epoch")
for B in BATCH_SIZES:
    results[B] = train_one(B, EPOCHS, X_train, y_train, X_test, y_test)
    r = results[B]
    print(f"{B:>6}  {-(-len(X_train) // B):>13,}  {r['loss'][-1]:>10.4f}  "
          f"{r['accuracy']:>13.2%}  {np.median(r['seconds']):>7.2f}")"""),
        md(r"""
## 4 · Three plots

Draw one figure `fig` with three plots:

1. the training loss per epoch, one curve per batch size (a logarithmic loss axis helps);
2. the test accuracy after the last epoch against the batch size (a logarithmic batch
   axis, base 2, helps);
3. the time per epoch against the batch size.

Label the axes and the curves."""),
        answer("D2-figure", """
fig = ...""", """
fig, (ax_loss, ax_acc, ax_time) = plt.subplots(1, 3, figsize=(15, 4.2))
colours = plt.cm.viridis(np.linspace(0, 0.9, len(BATCH_SIZES)))
epochs = np.arange(1, EPOCHS + 1)
for B, colour in zip(BATCH_SIZES, colours):
    ax_loss.plot(epochs, results[B]["loss"], "o-", ms=3, color=colour, label=f"B = {B}")
ax_loss.set(xlabel="epoch", ylabel="mean training loss", yscale="log",
            title="Training loss per epoch")
ax_loss.legend(fontsize=7, ncol=2)

sizes = np.array(BATCH_SIZES)
ax_acc.plot(sizes, [100 * results[B]["accuracy"] for B in BATCH_SIZES], "o-")
ax_acc.set(xscale="log", xlabel="batch size B", ylabel="test accuracy (%)",
           title=f"Test accuracy after {EPOCHS} epochs")
ax_acc.set_xscale("log", base=2)

ax_time.plot(sizes, [np.median(results[B]["seconds"]) for B in BATCH_SIZES], "o-")
ax_time.set(xlabel="batch size B", ylabel="seconds per epoch (median)",
            title="Time per epoch", yscale="log")
ax_time.set_xscale("log", base=2)
for ax in (ax_loss, ax_acc, ax_time):
    ax.grid(alpha=0.3)
fig.tight_layout()"""),
        md(r"""
## 5 · Analysis (about 200 words)

Explain your three plots. Points to address: how many updates each batch size makes
in an epoch, and what that does to the loss after a fixed number of epochs; why the
largest batches reach a worse test accuracy in 20 epochs although each of their
gradients is more accurate; why the time per epoch falls as $B$ grows, and where it
stops falling on your machine; what you would change to make the large batches
competitive (think of the learning-rate scaling rules of section 8.1 and the warm-up
of section 8.7); and
which batch size you would choose, and why. Quote your own numbers."""),
        prose("D2-analysis", "analysis, about 200 words", r"""
*A model answer, from the reference run shown above (Fashion-MNIST, 20 epochs, one seed
per batch size, on a CPU); your numbers will differ. The times in that run's table and
third plot were measured while other jobs shared the machine (which is why $B = 16$
and $32$ look so slow), so this answer does not quote them.*

With 60,000 images an epoch is 3,750 Adam updates at $B = 16$ but only 15 at
$B = 4096$. Every run sees each image 20 times, so the small batches make 250 times
more updates. After 20 epochs the training loss is lowest around $B = 32$–$128$
(0.16–0.17) and climbs steadily with $B$ to 0.35 at 4096, whose run is still early in
training. At $B = 16$ it is a little higher again (0.18): Adam's steps have about the
same size whatever $B$, and their direction is noisier, since the typical error of a
mini-batch gradient shrinks only like $1/\sqrt B$ (section 8.1) and so is twice as
large at $B = 16$ as at $B = 64$. Test accuracy follows: 89.7 % at $B = 32$, 88–89 %
up to 512, 86.4 % at 4096. With one seed each, differences of a few tenths of a point
are within noise; the steady fall towards the largest batches is not. A large-batch
gradient is more accurate, but with the same $\alpha$ an accurate step moves the
weights no further than a noisy one, so the progress made per epoch falls with $B$.

The time per epoch falls as $B$ grows: one update on 4,096 examples uses the vectorised
arithmetic far better than 256 updates on 16, and pays the per-step overhead (Python,
the optimizer step) once instead of 256 times. Once a batch keeps the hardware busy, a
larger one takes proportionally longer and the curve flattens; where that happens
depends on the machine.

To make large batches competitive, raise $\alpha$ with $B$ (the linear or square-root
rule of section 8.1) with a warm-up (section 8.7), or train for more epochs. I would
choose $B$ = 64–128: within about half a point of the best accuracy, with far fewer
updates per epoch than $B = 16$ or $32$ and so, on a quiet machine, far less time per
epoch."""),
        md("""
## Self-checks

Two checks you can run now, one point each. The graded run checks more: that one epoch
with the whole data set as a batch makes exactly one Adam step of size $\\alpha$, that
each reported accuracy is the trained network's, that the small batches learn, and that
the figure has the three plots."""),
        check("D2-model-shape", 1, """
# The network: three linear layers 784 → 256 → 128 → 10 with ReLUs, 10 logits per
# image.
import torch
from torch import nn
_net = make_model(0)
_linear = [m for m in _net.modules() if isinstance(m, nn.Linear)]
assert [tuple(m.weight.shape) for m in _linear] == [(256, 784), (128, 256),
                                                    (10, 128)], (
    "make_model must have three linear layers of shapes 784 → 256 → 128 → 10, "
    "in order; "
    f"found {[tuple(m.weight.shape)[::-1] for m in _linear]} (in → out).")
assert sum(isinstance(m, nn.ReLU) for m in _net.modules()) == 2, (
    "Use a ReLU after each hidden layer.")
assert sum(p.numel() for p in _net.parameters()) == 235_146, (
    "784·256 + 256 + 256·128 + 128 + 128·10 + 10 parameters")
assert tuple(_net(torch.zeros(5, 784)).shape) == (5, 10), (
    "The network maps (n, 784) to (n, 10) logits.")
assert all(torch.equal(a, b) for a, b in zip(make_model(3).state_dict().values(),
                                             make_model(3).state_dict().values())), (
    "make_model(seed) must give the same initial weights for the same seed.")
"""),
        check("D2-results-form", 1, """
# results: one record per batch size, each with EPOCHS losses and times and an accuracy.
import math
assert isinstance(results, dict), (
    f"results must be a dict, not {type(results).__name__}.")
assert sorted(results) == sorted(BATCH_SIZES), (
    f"results must have one entry per batch size {BATCH_SIZES}.")
for _B, _r in results.items():
    assert {"loss", "accuracy", "seconds", "model"} <= set(_r), (
        f"results[{_B}] misses keys.")
    assert len(_r["loss"]) == EPOCHS and len(_r["seconds"]) == EPOCHS, (
        f"results[{_B}] needs one loss and one time per epoch ({EPOCHS}).")
    assert all(math.isfinite(float(_l)) and float(_l) > 0 for _l in _r["loss"]), (
        f"results[{_B}]['loss'] must hold positive, finite mean losses.")
    assert 0.0 <= float(_r["accuracy"]) <= 1.0, (
        f"results[{_B}]['accuracy'] must be a fraction in [0, 1].")
    assert all(float(_s) > 0 for _s in _r["seconds"]), (
        f"results[{_B}]['seconds'] must be positive.")
"""),
    ]


# ======================================================================================
# E · the Optimizer Playground mini-project
# ======================================================================================
def exercise_e() -> list[Cell]:
    return [
        md(r"""
# Exercise E · Mini-project: the Optimizer Playground

*Chapter 8, "Optimization".* Build a small web app, with **Streamlit** or **Gradio**,
in which a reader can watch the chapter's optimizers at work on two-dimensional loss
surfaces:

* pick an optimizer: SGD, Momentum, RMSprop or Adam;
* set its hyperparameters with sliders: the learning rate $\alpha$, the momentum /
  RMSprop decay $\beta$, and Adam's $\beta_1$ and $\beta_2$;
* pick a surface: quadratic, Rosenbrock, Rastrigin or Beale;
* see the optimizer's path drawn on a contour plot of the surface, redrawn as soon as a
  setting changes;
* see the loss curves of **all four** optimizers on the same surface side by side;
* see a table of the parameters $(x, y)$ and the loss at every iteration.

**Deliverables.** (1) the app (one Python script, e.g. `playground.py`, started with
`streamlit run playground.py` or `python playground.py`); (2) a `README.md` that says
how to start it and shows screenshots; (3) an analysis of about 500 words comparing how
the optimizers behave on the different surfaces (in the last cell of this notebook).

**What this notebook collects.** A web app cannot be checked automatically, but its
core can: the four functions below are what the app calls. Write them here, then
import or copy them into your app. You may build on the book's `optbook.surfaces`
(`SURFACES`, `trajectory`) and `optbook.optimizers` (`OPTIMIZERS`), or write
everything yourself."""),
        how_to(f"Two self-checks are worth 1 point each; further checks worth "
               f"{hidden_points('E-playground')} points run when your notebook is graded. "
               "The app, the README and the analysis are graded by hand (see the "
               "rubric)."),
        md(r"""
## Rubric

| Part | Points | How it is graded |
|---|---|---|
| `run`: trajectories of the four optimizers on the four surfaces, with the hyperparameters given | 5 | automatically (hidden checks on several optimizer × surface × hyperparameter combinations) |
| `run`: shape and start point | 1 | automatically (self-check) |
| `run`: unknown optimizer or surface names raise `ValueError` naming them | 1 | automatically (hidden) |
| `losses` and `iteration_table`: consistent with the path | 3 | automatically (1 self-check, 2 hidden) |
| `contour_with_path`: a contour plot with one line per path | 2 | automatically (hidden) |
| The app: every control works, the plot updates live, loss curves and table shown | 20 | by hand |
| Code quality of the app (structure, no duplicated optimizer code, it starts as described) | 5 | by hand |
| README: how to install and start, screenshots of each view | 5 | by hand |
| Analysis (about 500 words): correct, specific, backed by runs from the app | 20 | by hand |

Automatic: 12 points. By hand: 50 points."""),
        setup("""
import numpy as np
import matplotlib.pyplot as plt

OPTIMIZER_NAMES = ("SGD", "Momentum", "RMSprop", "Adam")
SURFACE_NAMES = ("quadratic", "rosenbrock", "rastrigin", "beale")
ROW_KEYS = ("t", "x", "y", "loss")"""),
        md(r"""
## 1 · The trajectory

Write `run(optimizer_name, surface_name, hyperparams, start, steps)`:

* `optimizer_name` is one of `OPTIMIZER_NAMES`, `surface_name` one of
  `SURFACE_NAMES` (the same spelling as `optbook.surfaces.SURFACES`); any other name
  raises `ValueError` with a message that contains the bad name;
* `hyperparams` is a dict with any of the keys `"lr"` ($\alpha$), `"beta"` (Momentum
  and RMSprop), `"beta1"`, `"beta2"` and `"epsilon"` (Adam); a key the optimizer does not
  use is ignored (the app passes all its sliders), and a missing key takes the default
  of the book's optimizer class (`optbook.optimizers.SGD`, `MomentumSGD`, `RMSprop`,
  `Adam`);
* starting from `start` $= (x_0, y_0)$, make `steps` updates with the chapter's
  update rules (float64), each from the gradient at the current point;
* return a NumPy array of shape `(steps + 1, 2)`: row $t$ is $(x_t, y_t)$, so row 0 is
  the start. If the run diverges (the loss stops being finite or a coordinate
  exceeds $10^6$ in size), the rows after it are `nan`."""),
        answer("E-run", '''
def run(optimizer_name, surface_name, hyperparams, start, steps):
    """The path (x_t, y_t), t = 0..steps, as an array of shape (steps + 1, 2)."""
    raise NotImplementedError("E: write run")''', '''
from optbook import optimizers, surfaces

_PLAYGROUND_OPTIMIZERS = ("SGD", "Momentum", "RMSprop", "Adam")
_PLAYGROUND_SURFACES = ("quadratic", "rosenbrock", "rastrigin", "beale")
_USES = {"SGD": ("lr",), "Momentum": ("lr", "beta"),
         "RMSprop": ("lr", "beta", "epsilon"),
         "Adam": ("lr", "beta1", "beta2", "epsilon")}


def _playground_surface(surface_name):
    if surface_name not in _PLAYGROUND_SURFACES:
        raise ValueError(f"Unknown surface {surface_name!r}; choose one of "
                         + ", ".join(_PLAYGROUND_SURFACES))
    return surfaces.SURFACES[surface_name]


def run(optimizer_name, surface_name, hyperparams, start, steps):
    """The path (x_t, y_t), t = 0..steps, as an array of shape (steps + 1, 2)."""
    if optimizer_name not in _PLAYGROUND_OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {optimizer_name!r}; choose one of "
                         + ", ".join(_PLAYGROUND_OPTIMIZERS))
    surface = _playground_surface(surface_name)
    kwargs = {k: v for k, v in dict(hyperparams).items() if k in _USES[optimizer_name]}
    opt = optimizers.OPTIMIZERS[optimizer_name](**kwargs)
    path = surfaces.trajectory(opt, surface, start=start, steps=steps).points
    out = np.full((steps + 1, 2), np.nan)
    out[:len(path)] = path
    return out


print(run("Adam", "rosenbrock", {"lr": 0.01}, (-1.2, 1.0), 3))'''),
        md(r"""
## 2 · Losses and the iteration table

* `losses(surface_name, path)` returns the loss $J(x_t, y_t)$ at every row of `path`
  (an array of shape `(n, 2)`), as a NumPy array of shape `(n,)`.
* `iteration_table(path, surface_name)` returns the table the app shows: a list with
  one dict per row of `path`, with the keys `"t"` (the iteration, 0 for the start),
  `"x"`, `"y"` and `"loss"` (plain Python numbers)."""),
        answer("E-losses", '''
def losses(surface_name, path):
    """J at every row of path, shape (n,)."""
    raise NotImplementedError("E: write losses")


def iteration_table(path, surface_name):
    """One dict {"t", "x", "y", "loss"} per row of path."""
    raise NotImplementedError("E: write iteration_table")''', '''
def losses(surface_name, path):
    """J at every row of path, shape (n,)."""
    pts = np.asarray(path, dtype=float)
    surface = _playground_surface(surface_name)
    return np.asarray(surface.f(pts[:, 0], pts[:, 1]), dtype=float)


def iteration_table(path, surface_name):
    """One dict {"t", "x", "y", "loss"} per row of path."""
    pts = np.asarray(path, dtype=float)
    return [{"t": t, "x": float(x), "y": float(y), "loss": float(j)}
            for t, ((x, y), j) in enumerate(zip(pts, losses(surface_name, pts)))]'''),
        md(r"""
## 3 · The contour plot

`contour_with_path(surface_name, paths)` draws the contours of the surface and, on top,
one line per entry of `paths` (a dict mapping a label such as `"Adam"` to an array of
shape `(n, 2)`), and returns the matplotlib `Figure`. `optbook.book.surface_figures.contour_figure`
does most of this; a legend and a marker for the start are welcome."""),
        answer("E-figure", '''
def contour_with_path(surface_name, paths):
    """A Figure: the surface's contours with one line per path."""
    raise NotImplementedError("E: write contour_with_path")''', '''
from optbook.book.surface_figures import contour_figure


def contour_with_path(surface_name, paths):
    """A Figure: the surface's contours with one line per path."""
    return contour_figure(_playground_surface(surface_name), dict(paths),
                          show_start=False,
                          title=f"{surface_name}: {len(paths)} optimizer(s)")


_demo_lr = {"SGD": 0.002, "Momentum": 0.001, "RMSprop": 0.01, "Adam": 0.05}
_demo = {name: run(name, "rosenbrock", {"lr": lr}, (-1.2, 1.0), 300)
         for name, lr in _demo_lr.items()}
fig = contour_with_path("rosenbrock", _demo)'''),
        md("""
## Self-checks

Two checks you can run now, one point each. The graded run checks more: the paths of
several optimizer × surface × hyperparameter combinations against a reference, the
losses and the table on them, the figure, and the errors for unknown names."""),
        check("E-run-shape", 1, """
# run returns steps + 1 points that start at the start.
import numpy as np
_path = run("SGD", "quadratic", {"lr": 0.1}, (1.0, -0.5), 5)
assert isinstance(_path, np.ndarray), (
    f"run must return a NumPy array, not {type(_path).__name__}.")
assert _path.shape == (6, 2), (
    f"run(..., steps=5) must have shape (6, 2), not {_path.shape}.")
assert np.allclose(_path[0], (1.0, -0.5)), "Row 0 of the path must be the start point."
"""),
        check("E-table-keys", 1, """
# The table has one row per point, with the keys t, x, y, loss, and t counts from 0.
import numpy as np
_path = run("Adam", "beale", {"lr": 0.01}, (1.0, 1.0), 4)
_rows = iteration_table(_path, "beale")
assert isinstance(_rows, list) and len(_rows) == 5, (
    "iteration_table must return a list with one dict per row of the path.")
assert all(isinstance(_r, dict) and set(_r) == set(ROW_KEYS) for _r in _rows), (
    "Every row must be a dict with exactly the keys 't', 'x', 'y', 'loss'.")
assert [_r["t"] for _r in _rows] == list(range(5)), (
    "t must count the iterations 0, 1, 2, ...")
assert np.shape(losses("beale", _path)) == (5,), (
    "losses must return one number per point.")
"""),
        md(r"""
## 4 · Analysis (about 500 words)

Compare how SGD, Momentum, RMSprop and Adam behave on the four surfaces, using runs
from your app (name the settings you used). Cover at least: the quadratic bowl as the
easy case; Rosenbrock's curved valley; Rastrigin's many local minima and whether any
optimizer escapes them; Beale's plateaus and steep walls and what per-parameter step
sizes do there; and how sensitive each optimizer is to $\alpha$. End with what you
would tell a reader choosing an optimizer."""),
        prose("E-analysis", "analysis", r"""
*(Reference outline for graders; a student's analysis should be of this kind, with their
own runs.)* On the quadratic bowl every optimizer converges; SGD's speed is set by
$\alpha$ alone, Momentum with $\beta = 0.9$ overshoots and spirals in, and Adam's steps
of about $\alpha$ per coordinate make it approach along the diagonal and then hover
within about $\alpha$ of the minimum until its $\hat v$ shrinks. On Rosenbrock, SGD
needs a small $\alpha$ (about $10^{-3}$) to stay stable on the steep walls and then
crawls along the valley floor; Momentum accumulates speed along the floor; RMSprop and
Adam rescale the tiny floor gradient and move along it far faster, Adam the most
smoothly. On Rastrigin every method stops in the local minimum nearest its start for a
small $\alpha$; a large $\alpha$ or high $\beta$ lets Momentum jump over a few ripples,
which is luck of the step size rather than a property of the method. On Beale the
plateaus have gradients many orders of magnitude smaller than the walls: SGD either
stalls on the plateau or diverges at the wall, while the adaptive methods, which divide
by $\sqrt{\hat v}$, take steps of similar size everywhere. SGD is the most sensitive to
$\alpha$; Adam's default $\alpha = 10^{-3}$ works on all four surfaces, but slowly.
Advice: start with Adam, and tune $\alpha$ first."""),
    ]


EXERCISES = {
    "A-multiple-choice": exercise_a,
    "B-short-answers": exercise_b,
    "C-long-answers": exercise_c,
    "D1-adam-rosenbrock": exercise_d1,
    "D2-batch-size": exercise_d2,
    "E-playground": exercise_e,
}


# ======================================================================================
# writing the notebooks
# ======================================================================================
def _notebook(exercise_id: str, cells: list[Cell], *, solution: bool):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"},
                   "optbook": {"exercise": exercise_id}}
    prefix = exercise_id.split("-")[0].lower()
    for i, c in enumerate(cells):
        source = c.solution if (solution and c.role == "answer") else c.source
        meta = {"role": c.role}
        tags = []
        if c.role == "answer":
            meta["id"] = c.id
            if c.prose:
                meta["kind"] = "prose"
                if solution:  # a dropdown in JupyterLab and in the book alike
                    source = _dropdown(source)
            tags = ["answer"]
        elif c.role == "test":
            meta.update(id=c.id, points=c.points, visible=True)
            tags = ["test"]
        if solution and c.kind == "code" and c.role in ("answer", "test"):
            tags.append("hide-input")  # the book shows the code behind a toggle
        if c.kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
        cell.id = f"{prefix}-{i:02d}"
        cell.metadata = {"optbook": meta, **({"tags": tags} if tags else {})}
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def _dropdown(answer: str) -> str:
    """A prose model answer folded into an HTML ``<details>`` block, which Markdown
    renders in JupyterLab and in the book alike: the reader decides when to look."""
    head, _, body = answer.partition("\n\n")
    return f"{head}\n\n<details>\n<summary>Show the model answer</summary>\n\n{body}\n\n</details>"


def _program(source: str) -> str:
    """The code as Python sees it: its syntax tree, without comments or layout."""
    return ast.dump(ast.parse(source))


def _reuse_outputs(exercise_id: str, solved) -> None:
    """Give ``solved`` the outputs of the stored solution instead of executing it.

    Allowed only when every code cell is the same program as the stored one (same id,
    same syntax tree: comments and line breaks may differ), so the outputs are still
    what this code prints. Text and model answers may change, the code may not."""
    path = ROOT / "solutions" / f"{exercise_id}.ipynb"
    stored = {c.id: c for c in nbformat.read(path, as_version=4).cells
              if c.cell_type == "code"}
    code = [c for c in solved.cells if c.cell_type == "code"]
    changed = [c.id for c in code if c.id not in stored
               or _program(stored[c.id].source) != _program(c.source)]
    if changed or len(code) != len(stored):
        sys.exit(f"--keep-outputs: the code of {exercise_id} changed (cells "
                 f"{', '.join(changed) or 'added or removed'}); run it without the flag")
    for cell in code:
        cell.outputs = stored[cell.id].outputs
        cell.execution_count = stored[cell.id].execution_count


def write(exercise_id: str, keep_outputs: bool = False) -> None:
    cells = EXERCISES[exercise_id]()
    pristine = _notebook(exercise_id, cells, solution=False)
    solved = _notebook(exercise_id, cells, solution=True)
    if keep_outputs:
        _reuse_outputs(exercise_id, solved)  # before anything is written
    nbformat.write(pristine, ROOT / "exercises" / f"{exercise_id}.ipynb")

    if not keep_outputs:
        with tempfile.TemporaryDirectory() as tmp:
            # No time limit: D2's full batch-size experiment takes many minutes on a
            # CPU. (OPTBOOK_GRADING=1 in the environment runs the grader's short
            # setting instead.)
            NotebookClient(solved, timeout=None, kernel_name="python3",
                           record_timing=False,
                           resources={"metadata": {"path": tmp}}).execute()
    solved.metadata = {k: v for k, v in solved.metadata.items()
                       if k in ("kernelspec", "language_info", "optbook")}
    solved.metadata["language_info"] = {"name": "python"}
    nbformat.write(solved, ROOT / "solutions" / f"{exercise_id}.ipynb")
    print(f"wrote exercises/{exercise_id}.ipynb and solutions/{exercise_id}.ipynb")


if __name__ == "__main__":
    args = sys.argv[1:]
    keep = "--keep-outputs" in args
    names = [a for a in args if a != "--keep-outputs"]
    for name in names or list(EXERCISES):
        write(name, keep_outputs=keep)
