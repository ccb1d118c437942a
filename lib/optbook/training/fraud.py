r"""The opening's fraud story, reproduced small: rare positives, full batch against mini-batches.

The chapter opens with a story (``chapters/00-opening.md``): a fraud model on 48 million
transactions with 186 features went from 6 hours per epoch with batch gradient descent
to 12 minutes per epoch with mini-batches of 512, Adam and a cosine schedule.  This module
holds what the scaled-down reproduction (``chapters/02-fraud-story-measured.md``)
needs:

* :func:`synthetic_transactions`: a transaction table with 186 features of very
  different scales (amounts in rupees, counts, rates, yes/no flags, behavioural
  embeddings) and rare fraud labels drawn from a hidden model (:class:`Transactions`);
* :func:`roc_auc`: the area under the ROC curve from ranks (ties counted as half);
* :func:`logistic_model`: the model, a logistic regression (one linear layer);
* :func:`train_until`: one training loop for every set-up of the experiment — any batch
  size, plain gradient descent or Adam, a constant or a cosine learning rate — that
  stops once the loss on the whole training set reaches a target and records the wall
  time of the updates alone (:class:`FraudRun`);
* :func:`best_loss`: the lowest training loss the model can reach (L-BFGS), from which
  the target is set.

**The hidden model.**  A transaction's fraud probability is
:math:`\sigma(b + w^\top z + 1.2\,[\text{new device}]\,[\text{amount} > 3\times
\text{usual}] + 0.8\,[\text{night}]\,[\text{international}])`, where :math:`z` holds
the standardised values of 24 of the 186 features (the others carry no signal), the
weights :math:`w` are fixed by ``world_seed`` and the bias :math:`b` is set so that about
``positive_rate`` of all transactions are fraud.  The two products are interactions that
a logistic regression cannot represent, so even the best such model stays below the
hidden model.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from optbook._checks import check_int as _check_int
from optbook.training.ranking import standardize

__all__ = ["AMOUNT_FEATURES", "COUNT_FEATURES", "RATE_FEATURES", "FLAG_FEATURES",
           "Transactions", "synthetic_transactions", "fraud_data", "roc_auc", "logistic_model",
           "FraudRun", "train_until", "best_loss", "mean_loss"]

#: Columns in rupees (heavy-tailed).
AMOUNT_FEATURES = ("amount", "avg_amount_30d", "max_amount_30d", "balance", "credit_limit",
                   "merchant_avg_amount", "amount_minus_avg", "daily_spend", "monthly_income",
                   "last_amount")
#: Columns that count events.
COUNT_FEATURES = ("txns_1h", "txns_24h", "txns_7d", "failed_logins_24h", "distinct_merchants_7d",
                  "distinct_devices_30d", "chargebacks_1y", "days_since_signup",
                  "days_since_last_txn", "merchant_txns_24h", "card_age_days", "otp_retries")
#: Columns that are rates or fractions in [0, 1].
RATE_FEATURES = ("merchant_fraud_rate", "online_share_30d", "international_share_30d",
                 "night_share_30d", "declined_share_30d", "credit_utilisation",
                 "merchant_refund_rate", "new_merchant_share", "device_trust", "ip_risk",
                 "email_age_score", "address_match", "velocity_score", "mcc_risk")
#: Yes/no columns (0 or 1).
FLAG_FEATURES = ("new_device", "international", "card_present", "night", "weekend",
                 "contactless", "recurring", "first_time_merchant", "vpn", "address_changed_30d",
                 "pin_used", "wallet")
_NAMED = AMOUNT_FEATURES + COUNT_FEATURES + RATE_FEATURES + FLAG_FEATURES
_INFORMATIVE = 24


def _heavy_columns() -> list[int]:
    """Amounts and counts, which get :math:`\\log(1+x)`; not the one signed amount column."""
    signed = AMOUNT_FEATURES.index("amount_minus_avg")
    return [c for c in range(len(AMOUNT_FEATURES) + len(COUNT_FEATURES)) if c != signed]


@dataclass
class Transactions:
    """A transaction table: ``X`` ``(n, n_features)`` float32 (raw, in the features' own
    units), ``y`` ``(n,)`` float32 (1 = fraud), ``p_fraud`` ``(n,)`` float32 (the hidden
    model's probability), all torch tensors; ``feature_names`` and ``groups`` (column
    indices of ``"amount"``, ``"count"``, ``"rate"``, ``"flag"`` and ``"embedding"``)."""

    X: object
    y: object
    p_fraud: object
    feature_names: list = field(default_factory=list)
    groups: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def positive_rate(self) -> float:
        return float(self.y.mean())


def _draw(rng, n: int, n_embed: int):
    """Raw features ``(n, 50 + n_embed)`` and the standardised copy the hidden model reads."""
    income = np.exp(rng.normal(math.log(40_000), 0.7, n))
    usual = income * np.exp(rng.normal(-4.0, 0.8, n))
    amount = usual * np.exp(rng.normal(0.0, 1.0, n))
    amounts = np.column_stack([
        amount, usual, usual * np.exp(np.abs(rng.normal(1.0, 0.5, n))),
        income * np.exp(rng.normal(0.5, 1.0, n)), income * rng.choice([1.0, 2.0, 3.0, 5.0], n),
        usual * np.exp(rng.normal(0.0, 0.7, n)), amount - usual,
        usual * rng.gamma(2.0, 1.5, n), income, usual * np.exp(rng.normal(0.0, 1.0, n)),
    ])
    counts = np.column_stack([rng.poisson(lam, n) for lam in
                              (0.3, 2.5, 12.0, 0.2, 6.0, 1.5, 0.05, 900.0, 2.0, 300.0, 700.0, 0.4)])
    rates = np.column_stack([rng.beta(a, b, n) for a, b in
                             ((1, 60), (3, 3), (1, 15), (2, 10), (1, 20), (2, 4), (1, 25), (2, 8),
                              (8, 2), (1, 8), (5, 2), (9, 1), (2, 5), (1, 10))])
    flags = np.column_stack([rng.random(n) < q for q in
                             (0.05, 0.06, 0.5, 0.12, 0.28, 0.3, 0.15, 0.2, 0.03, 0.04, 0.35, 0.25)])
    embed = rng.standard_normal((n, n_embed))
    X = np.hstack([amounts, counts.astype(float), rates, flags.astype(float), embed])
    return X, amount / usual, flags


@functools.lru_cache(maxsize=8)
def _world(world_seed: int, n_embed: int, positive_rate: float):
    """Hidden weights, the features they read and the bias that gives ``positive_rate``."""
    rng = np.random.default_rng([world_seed, n_embed, 186])
    X, ratio, flags = _draw(rng, 50_000, n_embed)
    d = X.shape[1]
    Z = _hidden_inputs(X)
    columns = np.sort(rng.choice(d, size=_INFORMATIVE, replace=False))
    w = rng.normal(0.0, 0.6, _INFORMATIVE)
    mu, sd = Z[:, columns].mean(0), Z[:, columns].std(0)
    extra = _interactions(ratio, flags)
    raw = ((Z[:, columns] - mu) / sd) @ w + extra
    lo, hi = -30.0, 10.0                       # bisection for the bias
    for _ in range(80):
        b = 0.5 * (lo + hi)
        if np.mean(1 / (1 + np.exp(-(raw + b)))) > positive_rate:
            hi = b
        else:
            lo = b
    return columns, w, mu, sd, b


def _hidden_inputs(X):
    """The hidden model reads amounts and counts on a log scale."""
    Z = X.copy()
    heavy = _heavy_columns()
    Z[:, heavy] = np.log1p(np.maximum(Z[:, heavy], 0.0))
    return Z


def _interactions(ratio, flags):
    new_device, international, night = flags[:, 0], flags[:, 1], flags[:, 3]
    return 1.2 * new_device * (ratio > 3.0) + 0.8 * night * international


def synthetic_transactions(n: int = 65_536, n_features: int = 186, positive_rate: float = 0.01,
                           seed: int = 0, *, world_seed: int = 0) -> Transactions:
    r"""``n`` transactions with ``n_features`` features and about ``positive_rate`` fraud.

    The hidden model (see the module's docstring) depends only on ``world_seed``,
    ``n_features`` and ``positive_rate``; different ``seed`` values draw independent
    tables from the same world (a training set and a validation set, say).

    >>> t = synthetic_transactions(n=1000, seed=1)
    >>> tuple(t.X.shape), 0.0 < t.positive_rate < 0.05
    ((1000, 186), True)
    """
    n = _check_int("n", n, 2)
    n_features = _check_int("n_features", n_features, len(_NAMED) + _INFORMATIVE)
    if isinstance(positive_rate, bool) or not isinstance(positive_rate, numbers.Real) \
            or not 0.0 < positive_rate < 0.5:
        raise ValueError(f"Invalid positive_rate: {positive_rate!r} (must be between 0 and 0.5)")
    n_embed = n_features - len(_NAMED)
    columns, w, mu, sd, b = _world(_check_int("world_seed", world_seed, 0), n_embed,
                                          float(positive_rate))
    rng = np.random.default_rng([_check_int("seed", seed, 0), 2])
    X, ratio, flags = _draw(rng, n, n_embed)
    Z = _hidden_inputs(X)
    logit = ((Z[:, columns] - mu) / sd) @ w + _interactions(ratio, flags) + b
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(n) < p).astype(float)
    k = [len(AMOUNT_FEATURES), len(COUNT_FEATURES), len(RATE_FEATURES), len(FLAG_FEATURES)]
    edges = np.cumsum([0] + k)
    groups = {name: list(range(edges[i], edges[i + 1]))
              for i, name in enumerate(("amount", "count", "rate", "flag"))}
    groups["embedding"] = list(range(edges[-1], n_features))
    return Transactions(
        X=torch.as_tensor(X, dtype=torch.float32), y=torch.as_tensor(y, dtype=torch.float32),
        p_fraud=torch.as_tensor(p, dtype=torch.float32),
        feature_names=list(_NAMED) + [f"behaviour_emb_{i}" for i in range(n_embed)], groups=groups)


def fraud_data(n_train: int = 65_536, n_valid: int = 65_536, positive_rate: float = 0.01,
               seed: int = 0):
    r"""``(train, valid)`` transaction tables from one world, ``X`` standardised with the
    training statistics (amounts and counts through :math:`\log(1+x)` first; the one
    signed amount column is left linear)."""
    train = synthetic_transactions(n_train, positive_rate=positive_rate, seed=seed + 1)
    valid = synthetic_transactions(n_valid, positive_rate=positive_rate, seed=seed + 2)
    train.X, valid.X = standardize(train.X, valid.X, log_columns=_heavy_columns())
    return train, valid


# ------------------------------------------------------------------------ AUC
def roc_auc(scores, labels) -> float:
    r"""Area under the ROC curve, from ranks.

    The AUC is the probability that a randomly chosen positive scores higher than a
    randomly chosen negative, a tie counting one half.  Sorting all :math:`n` scores and
    giving tied scores their average rank, with :math:`R_+` the sum of the positives'
    ranks (from 1), :math:`n_+` positives and :math:`n_-` negatives,

    .. math::

        \text{AUC} = \frac{R_+ - n_+(n_+ + 1)/2}{n_+\, n_-}

    (the Mann–Whitney statistic), in :math:`O(n \log n)` instead of comparing all
    :math:`n_+ n_-` pairs.  0.5 is a random ranking, 1 a perfect one.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s = scores.detach().cpu().numpy() if hasattr(scores, "detach") else scores
    t = labels.detach().cpu().numpy() if hasattr(labels, "detach") else labels
    s, t = np.asarray(s, dtype=float), np.asarray(t, dtype=float)
    if s.ndim != 1 or t.ndim != 1 or len(s) != len(t):
        raise ValueError(f"scores and labels must be 1-D and of the same length, "
                         f"got shapes {s.shape} and {t.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity (did training diverge?)")
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("labels must be 0 or 1")
    n_pos = int(t.sum())
    n_neg = len(t) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes, got {n_pos} positives and {n_neg} negatives")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    avg_rank = (starts + ends + 1) / 2.0          # ranks start+1 … end, averaged
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(avg_rank, ends - starts)
    return float((ranks[t == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# ------------------------------------------------------------------------ model and loop
def logistic_model(n_features: int = 186, positive_rate: float | None = None):
    r"""A logistic regression as a PyTorch module: ``nn.Linear(n_features, 1)``, zero
    weights.

    The bias starts at 0, or, given the training set's ``positive_rate`` :math:`\bar y`,
    at the log-odds :math:`\log(\bar y/(1-\bar y))`: the model then starts out
    predicting the base rate instead of 50%.  With 1% positives that start is worth
    hundreds of Adam steps, which would otherwise be spent moving the bias by about
    :math:`\alpha` per step from 0 to about −4.6.
    """
    n_features = _check_int("n_features", n_features, 1)
    model = torch.nn.Linear(n_features, 1)
    with torch.no_grad():
        model.weight.zero_()
        if positive_rate is None:
            model.bias.zero_()
        elif 0.0 < positive_rate < 1.0:
            model.bias.fill_(math.log(positive_rate / (1.0 - positive_rate)))
        else:
            raise ValueError(f"Invalid positive_rate: {positive_rate!r} (must be between 0 and 1)")
    return model


def mean_loss(model, X, y, batch_size: int = 65_536) -> float:
    """Mean binary cross-entropy of ``model`` on all of ``(X, y)`` (no gradients)."""
    with torch.no_grad():
        total = sum(float(torch.nn.functional.binary_cross_entropy_with_logits(
            model(X[i:i + batch_size]).squeeze(1), y[i:i + batch_size], reduction="sum"))
            for i in range(0, len(X), batch_size))
    return total / len(X)


def best_loss(X, y, iterations: int = 200) -> float:
    """The lowest mean training loss a logistic regression reaches on ``(X, y)``:
    full-batch L-BFGS from zero in float64, run to convergence (the loss is convex).

    If the two classes can be separated by a hyperplane (few positives, many features),
    the loss has no minimum and this returns a number close to 0.
    """
    X, y = X.double(), y.double()
    model = logistic_model(X.shape[1]).double().to(X.device)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=iterations,
                            tolerance_grad=1e-10, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(X).squeeze(1), y)
        loss.backward()
        return loss

    opt.step(closure)
    return mean_loss(model, X, y)


@dataclass
class FraudRun:
    """What :func:`train_until` recorded.

    ``epochs[k]``, ``seconds[k]`` and ``losses[k]`` belong together: after ``epochs[k]``
    epochs (fractions when checked inside an epoch), whose updates took ``seconds[k]`` of
    wall-clock time (the checks themselves are not timed), the mean loss on the whole
    training set was ``losses[k]``.  ``reached`` is the first check at which the loss
    was at or below the target (``None`` if it never was), ``updates`` the number of
    updates made and ``auc`` the validation AUC at the end of the run.
    """

    label: str
    batch_size: int
    epochs: np.ndarray
    seconds: np.ndarray
    losses: np.ndarray
    reached: int | None
    updates: int
    auc: float

    @property
    def epochs_to_target(self) -> float:
        return math.nan if self.reached is None else float(self.epochs[self.reached])

    @property
    def seconds_to_target(self) -> float:
        return math.nan if self.reached is None else float(self.seconds[self.reached])

    @property
    def seconds_per_epoch(self) -> float:
        return float(self.seconds[-1] / self.epochs[-1]) if self.epochs[-1] > 0 else math.nan


def train_until(model, train, valid, *, batch_size: int, optimizer: str = "gd", lr: float,
                schedule: str = "constant", max_epochs: float, target_loss: float,
                checks_per_epoch: int = 1, seed: int = 0, label: str = "") -> FraudRun:
    r"""Train ``model`` on ``train`` until its full training loss reaches ``target_loss``.

    Each update takes the next ``batch_size`` rows of a shuffled order
    (``batch_size = len(train)`` is batch gradient descent: one update per epoch) and
    applies ``optimizer``: ``"gd"`` (plain gradient descent,
    :math:`\theta \leftarrow \theta - \alpha g`) or ``"adam"`` (``torch.optim.Adam``,
    :math:`\beta_1 = 0.9`, :math:`\beta_2 = 0.999`, :math:`\varepsilon = 10^{-8}`).
    ``schedule="cosine"`` anneals :math:`\alpha` from ``lr`` to 0 over ``max_epochs``
    epochs, update by update.  The loss on the whole training set is checked
    ``checks_per_epoch`` times per epoch (only the updates are timed), and the run stops
    at the first check that reaches the target or after ``max_epochs``; then the
    validation AUC is measured.  The model and the tables may live on any device (the
    same one); on a GPU the clock waits for the queued work before it is read.
    """
    n = len(train)
    batch_size = _check_int("batch_size", batch_size, 1)
    checks_per_epoch = _check_int("checks_per_epoch", checks_per_epoch, 1)
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"Invalid optimizer: {optimizer!r} (must be 'gd' or 'adam')")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"Invalid schedule: {schedule!r} (must be 'constant' or 'cosine')")
    if not (isinstance(lr, numbers.Real) and 0 < lr < math.inf):
        raise ValueError(f"Invalid lr: {lr!r} (must be a positive number)")
    if not max_epochs > 0:
        raise ValueError(f"Invalid max_epochs: {max_epochs!r} (must be positive)")
    per_epoch = math.ceil(n / batch_size)
    total = max(1, round(max_epochs * per_epoch))
    check_every = max(1, per_epoch // checks_per_epoch)
    opt = (torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "gd"
           else torch.optim.Adam(model.parameters(), lr=lr))
    g = torch.Generator().manual_seed(seed)
    X, y = train.X, train.y

    def check(t, elapsed):
        epochs.append(t / per_epoch)
        seconds.append(elapsed)
        losses.append(mean_loss(model, X, y))
        return losses[-1] <= target_loss

    epochs, seconds, losses = [], [], []
    reached = 0 if check(0, 0.0) else None
    elapsed, t = 0.0, 0
    order = torch.randperm(n, generator=g)
    while reached is None and t < total:
        start = time.perf_counter()
        for _ in range(check_every):
            pos = (t % per_epoch) * batch_size
            if pos == 0 and t > 0:
                order = torch.randperm(n, generator=g)
            if batch_size >= n:                  # the whole set: no copy, no shuffle
                xb, yb = X, y
            else:
                idx = order[pos:pos + batch_size]
                xb, yb = X[idx], y[idx]
            if schedule == "cosine":
                cosine = 0.5 * (1 + math.cos(math.pi * t / total))
                opt.param_groups[0]["lr"] = lr * cosine
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(xb).squeeze(1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            t += 1
            if t == total or t % per_epoch == 0:
                break
        if X.is_cuda:                     # wait for the GPU before reading the clock
            torch.cuda.synchronize(X.device)
        elapsed += time.perf_counter() - start
        if check(t, elapsed):
            reached = len(losses) - 1
    with torch.no_grad():
        auc = roc_auc(model(valid.X).squeeze(1), valid.y)
    return FraudRun(label, batch_size, np.array(epochs), np.array(seconds), np.array(losses),
                    reached, t, auc)
