"""The training pipeline's settings (:class:`TrainConfig`), the learning-rate scaling
rules (:func:`scaled_lr`) and the rate before every update (:func:`lr_at`); every error
names the setting and the value it got.  The pipeline itself: :mod:`optbook.training.loop`."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from optbook._checks import check_int as _need_int
from optbook._checks import is_real as _is_real
from optbook.minibatch import scaled_lr as _scaled_lr_formula
from optbook.schedules import WarmupCosineSchedule

LR_SCALING_RULES = ("none", "linear", "sqrt")
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "off")

#: Settings that shape the training trajectory: a resumed run must not change them.
TRAJECTORY_FIELDS = ("epochs", "batch_size", "lr", "base_batch_size", "lr_scaling",
                     "optimizer", "weight_decay", "betas", "epsilon", "momentum",
                     "warmup_steps", "schedule", "min_lr", "clip_norm", "seed", "amp",
                     "drop_last")


# --------------------------------------------------------------------------------------
# Validation helpers: every error names the setting and the value it got.
# --------------------------------------------------------------------------------------


def _need_positive(name: str, value) -> None:
    if not _is_real(value) or not 0.0 < value < math.inf:
        raise ValueError(f"Invalid {name}: {value!r} (must be a positive finite number)")


def _need_nonnegative(name: str, value) -> None:
    if not _is_real(value) or not 0.0 <= value < math.inf:
        raise ValueError(f"Invalid {name}: {value!r} (must be a finite number >= 0)")


def _need_choice(name: str, value, choices) -> None:
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"Invalid {name}: {value!r} (must be one of {listed})")


def _need_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {name}: {value!r} (must be True or False)")


# --------------------------------------------------------------------------------------
# Learning-rate scaling and the per-update schedule
# --------------------------------------------------------------------------------------


def scaled_lr(base_lr: float, base_batch_size: int, batch_size: int,
              rule: str = "linear") -> float:
    r"""The peak learning rate for ``batch_size``, given ``base_lr`` that works at ``base_batch_size``.

    ``rule`` is ``"linear"`` (:math:`\alpha\,B/B_0`, Goyal et al. 2017), ``"sqrt"``
    (:math:`\alpha\sqrt{B/B_0}`) or ``"none"`` (:math:`\alpha`, whatever the batch).
    The formulas are :func:`optbook.minibatch.scaled_lr`'s.

    >>> scaled_lr(0.001, 4096, 32 * 4096, "sqrt") == 0.001 * 32 ** 0.5
    True
    >>> scaled_lr(0.1, 256, 1024, "linear"), scaled_lr(0.1, 256, 1024, "none")
    (0.4, 0.1)
    """
    _need_positive("base_lr", base_lr)
    _need_int("base_batch_size", base_batch_size, 1)
    _need_int("batch_size", batch_size, 1)
    _need_choice("rule", rule, LR_SCALING_RULES)
    if rule == "none":
        return float(base_lr)
    return _scaled_lr_formula(base_lr, base_batch_size, batch_size, rule)


@dataclass
class TrainConfig:
    r"""Every setting of :func:`fit`, checked when it is made (errors name the setting).

    ``batch_size`` is the **global** batch :math:`B`, summed over all processes (each of
    :math:`N` processes takes :math:`B/N`).  ``lr`` is :math:`\alpha` before scaling:
    the peak rate is ``scaled_lr(lr, base_batch_size, batch_size, lr_scaling)``
    (:attr:`peak_lr`); ``base_batch_size=None`` means ``batch_size``, i.e. no scaling.
    ``betas`` (:math:`\beta_1, \beta_2`) and ``epsilon`` (:math:`\varepsilon`) are
    AdamW's; ``momentum`` (:math:`\beta`) is SGD's; ``weight_decay`` is decoupled in
    AdamW and an L2 term in SGD (torch's conventions).  ``warmup_steps``
    (:math:`W`, in updates) and ``schedule`` (``"cosine"`` down to ``min_lr``, or
    ``"constant"`` at the peak) define :func:`lr_at`.  ``clip_norm`` is the maximal
    global gradient norm (``None``: no clipping).  ``amp``: ``"auto"`` uses bfloat16
    autocast on CUDA (float16 with a ``GradScaler`` where bfloat16 is unsupported) and
    nothing on the CPU; ``"bf16"``/``"fp16"`` force one (CUDA only); ``"off"`` never;
    ``True``/``False`` mean ``"auto"``/``"off"``.  ``checkpoint_every`` counts updates
    (0: only at the end); ``resume=True`` continues from ``checkpoint_path`` when that
    file exists (and starts afresh when it does not).  ``log_every``: one history record
    every so many updates.  ``max_steps`` stops the run after that many updates in
    total; it does *not* shorten the schedule, which always spans ``epochs`` (so a run
    stopped by ``max_steps`` and resumed is the same run as an uninterrupted one).
    """

    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    base_batch_size: int | None = None
    lr_scaling: str = "none"
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    epsilon: float = 1e-8
    momentum: float = 0.9
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr: float = 0.0
    clip_norm: float | None = None
    seed: int = 0
    amp: str | bool = "auto"
    checkpoint_path: str | None = None
    checkpoint_every: int = 0
    resume: bool = False
    progress: bool = False
    log_every: int = 1
    num_workers: int = 0
    drop_last: bool = False
    max_steps: int | None = None

    def __post_init__(self):
        _need_int("epochs", self.epochs, 1)
        _need_int("batch_size", self.batch_size, 1)
        _need_positive("lr", self.lr)
        if self.base_batch_size is not None:
            _need_int("base_batch_size", self.base_batch_size, 1)
        _need_choice("lr_scaling", self.lr_scaling, LR_SCALING_RULES)
        _need_choice("optimizer", self.optimizer, OPTIMIZERS)
        _need_nonnegative("weight_decay", self.weight_decay)
        betas = self.betas
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                or not all(_is_real(b) and 0.0 <= b < 1.0 for b in betas)):
            raise ValueError(f"Invalid betas: {betas!r} (must be two numbers in [0, 1))")
        self.betas = (float(betas[0]), float(betas[1]))
        _need_positive("epsilon", self.epsilon)
        if not _is_real(self.momentum) or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"Invalid momentum: {self.momentum!r} (must be in [0, 1))")
        _need_int("warmup_steps", self.warmup_steps, 0)
        _need_choice("schedule", self.schedule, SCHEDULES)
        _need_nonnegative("min_lr", self.min_lr)
        if self.min_lr > self.peak_lr:
            raise ValueError(f"Invalid min_lr: {self.min_lr!r} (must not exceed the peak "
                             f"learning rate {self.peak_lr!r})")
        if self.clip_norm is not None:
            _need_positive("clip_norm", self.clip_norm)
        _need_int("seed", self.seed, 0)
        if not isinstance(self.amp, bool):
            _need_choice("amp", self.amp, AMP_MODES)
        if self.checkpoint_path is not None:
            if not isinstance(self.checkpoint_path, (str, os.PathLike)) or not os.fspath(
                    self.checkpoint_path):
                raise ValueError(f"Invalid checkpoint_path: {self.checkpoint_path!r} "
                                 "(must be a file path or None)")
            self.checkpoint_path = os.fspath(self.checkpoint_path)
        _need_int("checkpoint_every", self.checkpoint_every, 0)
        _need_bool("resume", self.resume)
        if self.checkpoint_path is None and (self.checkpoint_every or self.resume):
            what = "checkpoint_every" if self.checkpoint_every else "resume"
            value = self.checkpoint_every if self.checkpoint_every else self.resume
            raise ValueError(f"Invalid {what}: {value!r} (needs checkpoint_path, which is None)")
        _need_bool("progress", self.progress)
        _need_int("log_every", self.log_every, 1)
        _need_int("num_workers", self.num_workers, 0)
        _need_bool("drop_last", self.drop_last)
        if self.max_steps is not None:
            _need_int("max_steps", self.max_steps, 1)

    @property
    def peak_lr(self) -> float:
        """:math:`\\alpha` after the scaling rule: the top of the schedule."""
        return scaled_lr(self.lr, self.base_batch_size or self.batch_size, self.batch_size,
                         self.lr_scaling)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some settings changed (and checked again)."""
        return dataclasses.replace(self, **changes)


def _schedule(total_steps: int, config: TrainConfig) -> WarmupCosineSchedule:
    """The schedule of a run of ``total_steps`` updates (``constant``: cosine from peak to peak)."""
    _need_int("total_steps", total_steps, 1)
    W = config.warmup_steps
    if W >= total_steps:
        raise ValueError(f"Invalid warmup_steps: {W!r} (must be smaller than the run's "
                         f"number of updates, {total_steps} = epochs x updates per epoch)")
    peak = config.peak_lr
    floor = config.min_lr if config.schedule == "cosine" else peak
    return WarmupCosineSchedule(lr_max=peak, warmup_epochs=W, total_epochs=total_steps,
                                lr_min=floor)


def lr_at(step: int, total_steps: int, config: TrainConfig) -> float:
    r"""The learning rate of update ``step`` (0-based) in a run of ``total_steps`` updates.

    .. math::

        \alpha_t = \begin{cases}
            \alpha_{\rm peak}\,(t+1)/W & t < W \\
            \alpha_{\min} + \tfrac12(\alpha_{\rm peak}-\alpha_{\min})
                \bigl(1 + \cos\frac{\pi (t-W)}{T-W}\bigr) & t \ge W
        \end{cases}

    with :math:`\alpha_{\rm peak}` = ``config.peak_lr``, :math:`W` = ``warmup_steps``,
    :math:`T` = ``total_steps`` and :math:`\alpha_{\min}` = ``min_lr``
    (``schedule="constant"``: :math:`\alpha_t = \alpha_{\rm peak}` after the warm-up).
    The warm-up starts at :math:`\alpha_{\rm peak}/W`, just above zero, and the last
    update, :math:`t = T-1`, is one step short of :math:`\alpha_{\min}`.  It is
    :class:`optbook.schedules.WarmupCosineSchedule` counted in updates; in torch it is
    ``SequentialLR([LinearLR(start_factor=1/W, total_iters=W-1),
    CosineAnnealingLR(T_max=T-W, eta_min=min_lr)], milestones=[W])`` stepped once per
    update, for :math:`W \ge 2` (``tests/test_train.py`` checks the two agree over
    whole runs, and :math:`W = 0, 1` against ``CosineAnnealingLR`` and ``ConstantLR``).

    >>> c = TrainConfig(lr=0.1, warmup_steps=4)
    >>> [round(lr_at(t, 10, c), 4) for t in range(10)]
    [0.025, 0.05, 0.075, 0.1, 0.1, 0.0933, 0.075, 0.05, 0.025, 0.0067]
    """
    _need_int("step", step, 0)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    return float(_schedule(total_steps, config)(step))
