r"""Search ranking, reproduced small: click logs, a deep & cross network, NDCG@k.

The case study (``chapters/14-case-study-search-ranking.md``) describes a ranking model
trained on 1.5 billion logged query–click pairs; its lab
(``chapters/15-case-study-search-ranking-lab.md``) reproduces it small.  This module
makes a small click log whose hidden truth we know, and the pieces needed to train and
judge a ranker on it:

* :func:`synthetic_clicks`: a click log — queries, the products shown for each, 200+
  features of very different scales (prices in rupees, rates in [0, 1], counts,
  text embeddings), graded relevance from a hidden model, and clicks drawn from that
  relevance (:class:`ClickLog`); optionally a few *outliers* whose features are far
  outside the usual range;
* :func:`standardize`: z-scores fitted on the training log and applied unchanged to the
  test log (optionally after :math:`\log(1+x)` on heavy-tailed columns);
* :class:`DeepCrossNetwork`: the deep & cross network of Wang et al. (2017), cross
  layers and an MLP side by side, combined into one click logit;
* :func:`ndcg_at_k`: normalised discounted cumulative gain at rank :math:`k`, the
  metric the case study uses, written out here (ties handled exactly), and
  :func:`expected_ctr_at_k`, the click-through rate a ranking would earn under the hidden
  click model;
* :func:`ranking_data`: a training and a test log from one world, standardised;
* :func:`ddp_task`: the same data and model packaged as an :class:`optbook.training.cli.Task`,
  so that ``torchrun -m optbook.training --task optbook.training.ranking:ddp_task`` trains it on
  several processes.

**The hidden relevance model.**  Each query :math:`q` has a text embedding
:math:`u_q \sim \mathcal N(0, I)`, a preferred price :math:`P_q` (log-normal, median
₹2,000) and a price sensitivity :math:`\sigma_q \in [0, 1]`; each product :math:`p`
shown for it has an embedding :math:`e_p \sim \mathcal N(0, I)`, a price
:math:`\pi_p = P_q e^{\mathcal N(0, 0.6^2)}`, a discount :math:`\delta_p`, a rating and a
return rate.  With fixed random projections :math:`A, C` onto :math:`r = 4` "topics",
the hidden score is

.. math::

    s = 1.4\, \frac{(A u_q)^\top (C e_p)}{\sqrt r}
        + 0.6\, \text{quality}_p
        - 0.9\, \bigl|\log(\pi_p / P_q)\bigr|
        + 2.5\, \sigma_q\, (\delta_p - 0.2)
        + \mathcal N(0, 0.3^2),

where :math:`\text{quality}_p = (\text{rating}_p - 0.8)/0.12 - 0.5\,(\text{return}_p -
0.09)/0.06 + \mathcal N(0, 0.5^2)` is only partly visible through its features.  The
first term is a *feature cross* (a product of query and product features): the kind of
interaction cross layers are built to learn.  The graded relevance
:math:`\text{rel} \in \{0, 1, 2, 3\}` cuts :math:`s` at fixed quantiles (55%, 80% and
93% of all query–product pairs), and a click is drawn with probability 0.03, 0.10, 0.30
or 0.60 for relevance 0 to 3.  The model is trained on clicks (noisy, binary) and judged
by NDCG against the graded relevance it never sees.  There is no position bias and no
feedback loop, two things a real log has.

**Outliers.**  ``outliers=k`` turns ``k`` shown products into brand-new listings: 10
impressions, a historical click rate of 0.9 and an add-to-cart rate of 0.6, no reviews,
one day on the site, a price fifty times the query's usual one, and a click.  After
standardisation their features sit tens of standard deviations out, and because a cross
network multiplies features with each other, their gradients are larger still.

**Feature layout.**  24 named columns (:data:`PRICE_FEATURES`, :data:`RATE_FEATURES`,
:data:`COUNT_FEATURES`, in that order) followed by the query embedding and then the
product embedding, which share the remaining ``n_features - 24`` columns.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from optbook._checks import check_int as _check_int

__all__ = ["PRICE_FEATURES", "RATE_FEATURES", "COUNT_FEATURES", "CLICK_PROBABILITY",
           "ClickLog", "synthetic_clicks", "Standardizer", "standardize", "CrossLayer",
           "DeepCrossNetwork", "ndcg_per_query", "ndcg_at_k", "click_loss",
           "ranking_scores", "expected_ctr_at_k", "ranking_data", "ddp_task"]

#: Columns measured in rupees.
PRICE_FEATURES = ("price", "mrp", "discount_amount", "query_median_price", "seller_avg_price",
                  "shipping_fee")
#: Columns that are rates or fractions in [0, 1].
RATE_FEATURES = ("click_rate", "add_to_cart_rate", "return_rate", "rating_fraction",
                 "discount_fraction", "seller_on_time_rate", "brand_share", "in_stock_fraction",
                 "query_price_sensitivity", "query_ctr")
#: Columns that count something (impressions, reviews, days, ...).
COUNT_FEATURES = ("impressions", "reviews", "days_listed", "seller_products", "query_volume",
                  "stock_units", "images", "questions")
_NAMED = PRICE_FEATURES + RATE_FEATURES + COUNT_FEATURES
#: P(click | relevance = 0, 1, 2, 3) in the hidden click model.
CLICK_PROBABILITY = (0.03, 0.10, 0.30, 0.60)
_TOPICS = 4
_GRADE_QUANTILES = (0.55, 0.80, 0.93)


# ------------------------------------------------------------------------ the click log
@dataclass
class ClickLog:
    """A click log: one row per (query, shown product).

    ``X`` is ``(n, n_features)`` float32, ``clicks`` ``(n,)`` float32 (0 or 1),
    ``relevance`` ``(n,)`` int64 (the hidden grade 0–3), ``query_ids`` ``(n,)`` int64,
    ``click_probability`` ``(n,)`` float32 (the hidden model's chance of a click),
    ``signal`` ``(n,)`` float32 (the part of the hidden score that the features
    determine: the score without its noise terms — ranking by it is the best a model
    can hope for) and ``is_outlier`` ``(n,)`` bool — all torch tensors.  ``feature_names`` names every
    column and ``groups`` maps ``"price"``, ``"rate"``, ``"count"``, ``"query_embedding"``
    and ``"product_embedding"`` to their column indices.
    """

    X: object
    clicks: object
    relevance: object
    query_ids: object
    click_probability: object
    signal: object
    is_outlier: object
    feature_names: list = field(default_factory=list)
    groups: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_queries(self) -> int:
        return int(self.query_ids.unique().numel())


@dataclass(frozen=True)
class _World:
    """The hidden parts shared by every log drawn with the same ``world_seed``."""

    A: np.ndarray          # (topics, dq): query embedding → topics
    C: np.ndarray          # (topics, dp): product embedding → topics
    thresholds: np.ndarray  # (3,): score cut points between grades


def _draw(rng, n_queries: int, per_query: int, dq: int, dp: int, A, C):
    """Every attribute of ``n_queries × per_query`` rows, and the hidden score."""
    n = n_queries * per_query
    rep = lambda a: np.repeat(a, per_query, axis=0)                       # noqa: E731
    # query attributes
    u = rng.standard_normal((n_queries, dq))
    pref_price = np.clip(np.exp(rng.normal(math.log(2000.0), 1.0, n_queries)), 150.0, 80_000.0)
    sensitivity = rng.beta(2.0, 2.0, n_queries)
    query_volume = np.round(np.exp(rng.normal(7.0, 1.5, n_queries)))
    query_ctr = rng.beta(2.0, 30.0, n_queries)
    # product attributes
    e = rng.standard_normal((n, dp))
    price = np.round(rep(pref_price) * np.exp(rng.normal(0.0, 0.6, n)))
    discount = rng.beta(2.0, 6.0, n)
    mrp = np.round(price / (1.0 - discount))
    rating = rng.beta(8.0, 2.0, n)
    returns = rng.beta(2.0, 20.0, n)
    quality = (rating - 0.8) / 0.12 - 0.5 * (returns - 0.09) / 0.06 + rng.normal(0.0, 0.5, n)
    match = np.einsum("nt,nt->n", rep(u @ A.T), e @ C.T) / math.sqrt(A.shape[0])
    price_gap = np.abs(np.log(price / rep(pref_price)))
    quality_seen = (rating - 0.8) / 0.12 - 0.5 * (returns - 0.09) / 0.06
    signal = 1.4 * match + 0.6 * quality_seen - 0.9 * price_gap + 2.5 * rep(sensitivity) * (discount - 0.2)
    score = signal + 0.6 * (quality - quality_seen) + rng.normal(0.0, 0.3, n)
    impressions = np.round(np.exp(rng.normal(6.0, 1.5, n))) + 1
    click_rate = 1.0 / (1.0 + np.exp(-(-3.2 + 0.5 * quality + 0.6 * match + rng.normal(0, 0.3, n))))
    columns = {
        "price": price,
        "mrp": mrp,
        "discount_amount": mrp - price,
        "query_median_price": np.round(rep(pref_price) * np.exp(rng.normal(0.0, 0.1, n))),
        "seller_avg_price": np.round(price * np.exp(rng.normal(0.0, 0.5, n))),
        "shipping_fee": np.where(rng.random(n) < 0.6, 0.0, np.round(rng.uniform(30.0, 150.0, n))),
        "click_rate": click_rate,
        "add_to_cart_rate": click_rate * rng.beta(3.0, 7.0, n),
        "return_rate": returns,
        "rating_fraction": rating,
        "discount_fraction": discount,
        "seller_on_time_rate": rng.beta(20.0, 2.0, n),
        "brand_share": rng.beta(1.0, 10.0, n),
        "in_stock_fraction": rng.beta(10.0, 1.0, n),
        "query_price_sensitivity": rep(sensitivity),
        "query_ctr": rep(query_ctr),
        "impressions": impressions,
        "reviews": rng.poisson(np.exp(rng.normal(3.0, 1.5, n))).astype(float),
        "days_listed": np.round(np.exp(rng.normal(5.0, 1.0, n))) + 1,
        "seller_products": np.round(np.exp(rng.normal(4.0, 1.2, n))) + 1,
        "query_volume": rep(query_volume),
        "stock_units": rng.poisson(40.0, n).astype(float),
        "images": rng.integers(1, 9, n).astype(float),
        "questions": rng.poisson(3.0, n).astype(float),
    }
    named = np.column_stack([columns[name] for name in _NAMED])
    X = np.hstack([named, rep(u), e])
    return X, score, signal


@functools.lru_cache(maxsize=8)
def _world(world_seed: int, dq: int, dp: int) -> _World:
    rng = np.random.default_rng([world_seed, dq, dp, 8])
    A = rng.standard_normal((_TOPICS, dq)) / math.sqrt(dq)
    C = rng.standard_normal((_TOPICS, dp)) / math.sqrt(dp)
    _, score, _ = _draw(rng, 2000, 20, dq, dp, A, C)          # 40,000 pairs fix the cut points
    return _World(A, C, np.quantile(score, _GRADE_QUANTILES))


def synthetic_clicks(n_queries: int = 400, products_per_query: int = 20, n_features: int = 216,
                     seed: int = 0, *, outliers: int = 0, world_seed: int = 0) -> ClickLog:
    r"""A click log of ``n_queries`` queries with ``products_per_query`` products each.

    The hidden model (the module's docstring gives it in full) depends only on
    ``world_seed`` and ``n_features``, so logs drawn with different ``seed`` values are
    independent samples from the *same* world: draw the training log with one seed and
    the test log with another.  ``outliers=k`` turns ``k`` randomly chosen rows into new
    listings with extreme features and a click (``is_outlier`` marks them); their
    relevance is left as it was.

    >>> log = synthetic_clicks(n_queries=3, products_per_query=5, seed=1)
    >>> tuple(log.X.shape), log.query_ids.tolist()[:6]
    ((15, 216), [0, 0, 0, 0, 0, 1])
    """
    n_queries = _check_int("n_queries", n_queries, 1)
    per_query = _check_int("products_per_query", products_per_query, 2)
    n_features = _check_int("n_features", n_features, len(_NAMED) + 2 * _TOPICS)
    n = n_queries * per_query
    outliers = _check_int("outliers", outliers, 0)
    if outliers > n:
        raise ValueError(f"Invalid outliers: {outliers} (the log has only {n} rows)")
    dq = (n_features - len(_NAMED)) // 2
    dp = n_features - len(_NAMED) - dq
    world = _world(_check_int("world_seed", world_seed, 0), dq, dp)
    rng = np.random.default_rng([_check_int("seed", seed, 0), 1])
    X, score, signal = _draw(rng, n_queries, per_query, dq, dp, world.A, world.C)
    relevance = np.searchsorted(world.thresholds, score)           # 0 … 3
    p_click = np.asarray(CLICK_PROBABILITY)[relevance]
    clicks = (rng.random(n) < p_click).astype(float)

    is_outlier = np.zeros(n, dtype=bool)
    if outliers:
        rows = rng.choice(n, size=outliers, replace=False)
        is_outlier[rows] = True
        col = {name: i for i, name in enumerate(_NAMED)}
        X[rows, col["impressions"]] = 10.0
        X[rows, col["click_rate"]] = 0.9
        X[rows, col["add_to_cart_rate"]] = 0.6
        X[rows, col["reviews"]] = 0.0
        X[rows, col["days_listed"]] = 1.0
        for name in ("price", "mrp", "seller_avg_price"):
            X[rows, col[name]] = 50.0 * X[rows, col["query_median_price"]]
        X[rows, col["discount_amount"]] = X[rows, col["mrp"]] - X[rows, col["price"]]
        clicks[rows] = 1.0

    k = len(_NAMED)
    groups = {
        "price": list(range(0, len(PRICE_FEATURES))),
        "rate": list(range(len(PRICE_FEATURES), len(PRICE_FEATURES) + len(RATE_FEATURES))),
        "count": list(range(len(PRICE_FEATURES) + len(RATE_FEATURES), k)),
        "query_embedding": list(range(k, k + dq)),
        "product_embedding": list(range(k + dq, k + dq + dp)),
    }
    names = list(_NAMED) + [f"query_emb_{i}" for i in range(dq)] + [f"product_emb_{i}" for i in range(dp)]
    return ClickLog(
        X=torch.as_tensor(X, dtype=torch.float32),
        clicks=torch.as_tensor(clicks, dtype=torch.float32),
        relevance=torch.as_tensor(relevance, dtype=torch.int64),
        query_ids=torch.arange(n_queries).repeat_interleave(per_query),
        click_probability=torch.as_tensor(p_click, dtype=torch.float32),
        signal=torch.as_tensor(signal, dtype=torch.float32),
        is_outlier=torch.as_tensor(is_outlier),
        feature_names=names,
        groups=groups,
    )


# ------------------------------------------------------------------------ feature scales
class Standardizer:
    r"""Column-wise z-scores :math:`(x - \mu)/s`, with :math:`\mu` and :math:`s` fitted
    once (on the training data) and then applied unchanged to any other data.

    ``log_columns`` lists columns replaced by :math:`\log(1 + x)` *before* the z-score,
    for heavy-tailed non-negative features such as prices and counts.  A constant column
    (``s = 0``) is only centred.
    """

    def __init__(self, log_columns=()):
        self.log_columns = sorted(int(c) for c in log_columns)
        self.mean = None
        self.std = None

    def _prepare(self, X):
        X = torch.as_tensor(X, dtype=torch.float32)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D array of shape (n, n_features), got shape {tuple(X.shape)}")
        if self.log_columns:
            if self.log_columns[-1] >= X.shape[1] or self.log_columns[0] < 0:
                raise ValueError(f"log_columns {self.log_columns} out of range for {X.shape[1]} columns")
            X = X.clone()
            logged = X[:, self.log_columns]
            if bool((logged < 0).any()):
                raise ValueError("log_columns must be non-negative (log(1 + x) is applied to them)")
            X[:, self.log_columns] = torch.log1p(logged)
        return X

    def fit(self, X) -> "Standardizer":
        X = self._prepare(X)
        if X.shape[0] < 2:
            raise ValueError("need at least two rows to fit a standardizer")
        self.mean = X.mean(dim=0)
        std = X.std(dim=0)
        self.std = torch.where(std > 0, std, torch.ones_like(std))   # a constant column is only centred
        return self

    def transform(self, X):
        if self.mean is None:
            raise RuntimeError("Standardizer.transform called before fit")
        X = self._prepare(X)
        if X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"fitted on {self.mean.shape[0]} columns, got {X.shape[1]}")
        return (X - self.mean) / self.std


def standardize(train, *others, log_columns=()):
    r"""Fit z-scores on ``train`` and apply them to ``train`` and to each of ``others``.

    Returns a tuple ``(train_z, *others_z)``.  The test data is transformed with the
    *training* mean and spread, never its own — fitting on the test set would leak
    information about it into the model.

    >>> tr, te = standardize(torch.tensor([[1.0], [3.0]]), torch.tensor([[5.0]]))
    >>> [round(v, 4) for v in tr.flatten().tolist()], round(te.item(), 4)
    ([-0.7071, 0.7071], 2.1213)
    """
    scaler = Standardizer(log_columns).fit(train)
    return (scaler.transform(train), *(scaler.transform(X) for X in others))


# ------------------------------------------------------------------------ the model
class CrossLayer(nn.Module):
    r"""One cross layer of a deep & cross network.

    ``kind="vector"`` (Wang et al., 2017, "DCN"):
    :math:`x_{l+1} = x_0\,(w_l^\top x_l) + b_l + x_l`, with a weight *vector*
    :math:`w_l` and bias :math:`b_l` of the input's length :math:`d` — only
    :math:`2d` parameters, yet the output contains products of input features.

    ``kind="matrix"`` (Wang et al., 2021, "DCN-V2"):
    :math:`x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l`, with a :math:`d \times d`
    matrix :math:`W_l`.

    ``forward(x0, x)`` takes the network's input :math:`x_0` and this layer's input
    :math:`x_l`, both ``(n, d)``.
    """

    def __init__(self, d: int, kind: str = "vector", generator=None):
        super().__init__()
        if kind not in ("vector", "matrix"):
            raise ValueError(f"Invalid kind: {kind!r} (must be 'vector' or 'matrix')")
        self.kind = kind
        shape = (d,) if kind == "vector" else (d, d)
        self.weight = nn.Parameter(torch.randn(shape, generator=generator) / math.sqrt(d))
        self.bias = nn.Parameter(torch.zeros(d))

    def forward(self, x0, x):
        if self.kind == "vector":
            return x0 * (x @ self.weight).unsqueeze(-1) + self.bias + x
        return x0 * (x @ self.weight.T + self.bias) + x


class DeepCrossNetwork(nn.Module):
    r"""A deep & cross network (Wang et al., 2017): one click logit per row.

    The input :math:`x_0` (``(n, n_features)``) feeds two towers side by side:

    * the **cross network**, ``n_cross`` :class:`CrossLayer` s,
      :math:`x_{l+1} = x_0\,(w_l^\top x_l) + b_l + x_l`, whose output after
      :math:`L` layers is a polynomial of degree :math:`L + 1` in the features;
    * the **deep network**, an MLP with ReLU and the widths ``hidden``.

    Their outputs are concatenated and a final linear layer makes the logit
    :math:`z`; :math:`\sigma(z)` is the predicted click probability and :math:`z`
    itself the ranking score.  ``cross="matrix"`` uses DCN-V2's matrix layers.
    ``seed`` makes the initialisation reproducible without touching torch's global
    random state.  Weights: deep layers :math:`\mathcal N(0, 2/\text{fan\_in})` (He),
    cross weights :math:`\mathcal N(0, 1/d)`, biases zero.
    """

    def __init__(self, n_features: int, n_cross: int = 3, hidden=(128, 64),
                 cross: str = "vector", seed: int | None = 0):
        super().__init__()
        n_features = _check_int("n_features", n_features, 1)
        n_cross = _check_int("n_cross", n_cross, 0)
        hidden = tuple(hidden)
        if any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in hidden):
            raise ValueError(f"Invalid hidden: {hidden!r} (must be positive integers)")
        if n_cross == 0 and not hidden:
            raise ValueError("a deep & cross network needs cross layers or hidden layers")
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        self.n_features = n_features
        self.cross = nn.ModuleList(CrossLayer(n_features, cross, g) for _ in range(n_cross))
        layers, width = [], n_features
        for h in hidden:
            lin = nn.Linear(width, h)
            with torch.no_grad():
                lin.weight.copy_(torch.randn(h, width, generator=g) * math.sqrt(2.0 / width))
                lin.bias.zero_()
            layers += [lin, nn.ReLU()]
            width = h
        self.deep = nn.Sequential(*layers)
        self.head = nn.Linear((n_features if n_cross else 0) + (width if hidden else 0), 1)
        with torch.no_grad():
            fan_in = self.head.in_features
            self.head.weight.copy_(torch.randn(1, fan_in, generator=g) / math.sqrt(fan_in))
            self.head.bias.zero_()

    def forward(self, x0):
        if x0.ndim != 2 or x0.shape[1] != self.n_features:
            raise ValueError(f"expected input of shape (n, {self.n_features}), got {tuple(x0.shape)}")
        parts = []
        if len(self.cross):
            x = x0
            for layer in self.cross:
                x = layer(x0, x)
            parts.append(x)
        if len(self.deep):
            parts.append(self.deep(x0))
        return self.head(torch.cat(parts, dim=1)).squeeze(1)


def click_loss(model, batch):
    r"""Mean binary cross-entropy of the model's click logits on ``batch = (X, clicks)``
    (the ``loss_fn`` for :func:`optbook.training.loop.fit`)."""
    X, clicks = batch[0], batch[1]
    return torch.nn.functional.binary_cross_entropy_with_logits(model(X), clicks)


def ranking_scores(model, X, batch_size: int = 8192):
    """The model's scores for ``X`` (no gradients, model in eval mode, on the model's
    device), as a float64 NumPy array."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(X[i:i + batch_size].to(device)).float().cpu()
                         for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return out.double().numpy()


# ------------------------------------------------------------------------ NDCG@k
def _as_1d(name: str, values, dtype=float) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


_NO_RELEVANT = ("skip", "zero", "one")



def _ranking_inputs(scores, name: str, values, query_ids, k):
    """Check a ranking metric's arguments: ``k`` a positive integer, three 1-D arrays of
    one length (``values`` is called ``name`` in the messages)."""
    _check_int("k", k, 1)
    s = _as_1d("scores", scores)
    v = _as_1d(name, values)
    q = _as_1d("query_ids", query_ids, dtype=None)
    if not (len(s) == len(v) == len(q)):
        raise ValueError(f"scores, {name} and query_ids must have the same length, "
                         f"got {len(s)}, {len(v)} and {len(q)}")
    return s, v, q


def ndcg_per_query(scores, relevance, query_ids, k: int = 10, *, no_relevant: str = "skip"):
    r"""NDCG@k of every query: ``(query_ids, values)``, both sorted by query id.

    For one query, rank its items by ``scores`` (highest first).  With graded
    relevance :math:`\text{rel}_i`, the gain of an item is :math:`2^{\text{rel}_i} - 1`
    and the item at rank :math:`i` (from 1) is discounted by :math:`\log_2(i + 1)`:

    .. math::

        \text{DCG@}k = \sum_{i=1}^{\min(k, n)} \frac{2^{\text{rel}_i} - 1}{\log_2(i + 1)},
        \qquad
        \text{NDCG@}k = \frac{\text{DCG@}k}{\text{IDCG@}k},

    where :math:`\text{IDCG@}k` is the DCG@k of the best possible order (by relevance).
    NDCG@k lies in [0, 1], and equals 1 exactly when the top :math:`k` are as good as
    they can be (Järvelin & Kekäläinen, 2002).

    **Ties.**  Items with equal scores have no order, so the DCG of a tied group is its
    *expected* value over all orders of the group: every position the group occupies gets
    the group's mean gain (McSherry & Najork, 2008; scikit-learn's ``ndcg_score`` does the
    same).  Ranking by a constant score thus gives the NDCG of a random order, on average.

    **Queries with no relevant item** (all relevance 0) have IDCG = 0 and no NDCG.
    ``no_relevant`` says what to do: ``"skip"`` (default) leaves them out, ``"zero"``
    counts them as 0 (scikit-learn's convention), ``"one"`` as 1 (LightGBM's).
    """
    if no_relevant not in _NO_RELEVANT:
        raise ValueError(f"Invalid no_relevant: {no_relevant!r} (must be one of {_NO_RELEVANT})")
    s, rel, q = _ranking_inputs(scores, "relevance", relevance, query_ids, k)
    if len(s) == 0:
        raise ValueError("no items to rank (empty input)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity (did training diverge?)")
    if not np.all(np.isfinite(rel)) or np.any(rel < 0):
        raise ValueError("relevance must be finite and non-negative")
    order = np.argsort(q, kind="stable")
    s, rel, q = s[order], rel[order], q[order]
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    ends = np.r_[starts[1:], len(q)]
    ids, values = [], []
    for a, b in zip(starts, ends):
        value = _ndcg_one(s[a:b], rel[a:b], int(k))
        if math.isnan(value):
            if no_relevant == "skip":
                continue
            value = 0.0 if no_relevant == "zero" else 1.0
        ids.append(q[a])
        values.append(value)
    return np.asarray(ids), np.asarray(values, dtype=float)


def _ndcg_one(scores: np.ndarray, rel: np.ndarray, k: int) -> float:
    """NDCG@k of one query; ``nan`` when it has no relevant item."""
    gain = np.exp2(rel) - 1.0
    n = len(gain)
    discount = np.zeros(n)
    m = min(k, n)
    discount[:m] = 1.0 / np.log2(np.arange(2, m + 2))
    ideal = float(np.sort(gain)[::-1] @ discount)
    if ideal == 0.0:
        return math.nan
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gain[order]
    # groups of equal scores: each position in a group gets the group's mean gain
    group_start = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group_id = np.cumsum(np.isin(np.arange(n), group_start)) - 1
    mean_gain = np.bincount(group_id, weights=g) / np.bincount(group_id)
    return float(mean_gain[group_id] @ discount) / ideal


def ndcg_at_k(scores, relevance, query_ids, k: int = 10, *, no_relevant: str = "skip") -> float:
    r"""Mean NDCG@k over queries (see :func:`ndcg_per_query` for the definition, ties and
    queries without a relevant item).

    >>> ndcg_at_k([3.0, 2.0, 1.0], [2, 1, 0], [7, 7, 7])      # already in the best order
    1.0
    >>> round(ndcg_at_k([1.0, 2.0, 3.0], [2, 1, 0], [7, 7, 7]), 4)   # reversed
    0.5869
    """
    _, values = ndcg_per_query(scores, relevance, query_ids, k, no_relevant=no_relevant)
    if len(values) == 0:
        raise ValueError("no query has a relevant item, so NDCG is undefined "
                         "(use no_relevant='zero' or 'one' to score such queries)")
    return float(values.mean())


def expected_ctr_at_k(scores, click_probability, query_ids, k: int = 10) -> float:
    """Mean over queries of the hidden click probability of the top ``k`` items by score
    (ties broken by row order): the click-through rate the ranking would earn under the
    hidden click model, with no position bias."""
    s, p, q = _ranking_inputs(scores, "click_probability", click_probability, query_ids, k)
    out = []
    for qid in np.unique(q):
        rows = np.flatnonzero(q == qid)
        top = rows[np.argsort(-s[rows], kind="stable")[:k]]
        out.append(p[top].mean())
    return float(np.mean(out))



# ------------------------------------------------------------------------ for torchrun
def ddp_task(n_queries: int = 1500, products_per_query: int = 20, n_features: int = 216,
             test_queries: int = 300, seed: int = 0, outliers: int = 0, n_cross: int = 3,
             hidden=(128, 64), cross: str = "vector", k: int = 10):
    r"""The reproduction's training job as an :class:`optbook.training.cli.Task`.

    Training log: ``synthetic_clicks(n_queries, products_per_query, n_features,
    seed=seed + 1, outliers=outliers)``; test log: ``test_queries`` queries with
    ``seed=seed + 2``; both standardised with the training statistics (prices and counts
    through :math:`\log(1+x)` first).  The model is a :class:`DeepCrossNetwork`
    initialised with ``seed``, the loss :func:`click_loss`, and ``eval_fn`` returns the
    test set's ``ndcg@k`` and mean click loss.  ``config_overrides`` sets the case
    study's recipe (AdamW, weight decay 0.01, cosine); the command line sets the rest.
    """
    from torch.utils.data import TensorDataset

    from optbook.training.cli import Task

    train, test = ranking_data(n_queries, products_per_query, n_features, test_queries,
                               seed=seed, outliers=outliers)
    model = DeepCrossNetwork(n_features, n_cross=n_cross, hidden=tuple(hidden), cross=cross, seed=seed)

    def eval_fn(net):
        scores = ranking_scores(net, test.X)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            torch.as_tensor(scores, dtype=torch.float32), test.clicks).item()
        return {f"ndcg@{k}": ndcg_at_k(scores, test.relevance, test.query_ids, k),
                "test_loss": loss}

    return Task(model=model, dataset=TensorDataset(train.X, train.clicks), loss_fn=click_loss,
                eval_fn=eval_fn,
                config_overrides={"optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine"})


def ranking_data(n_queries: int = 1500, products_per_query: int = 20, n_features: int = 216,
                 test_queries: int = 300, seed: int = 0, outliers: int = 0):
    """``(train, test)`` click logs from one world, with ``X`` standardised on the
    training log (prices and counts through :math:`\\log(1+x)` first)."""
    train = synthetic_clicks(n_queries, products_per_query, n_features, seed=seed + 1, outliers=outliers)
    test = synthetic_clicks(test_queries, products_per_query, n_features, seed=seed + 2)
    heavy = train.groups["price"] + train.groups["count"]
    train.X, test.X = standardize(train.X, test.X, log_columns=heavy)
    return train, test

