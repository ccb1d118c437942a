"""The ranking lab (8.15): NDCG@k against hand-computed cases and a brute-force
reference, the deep & cross network against its formulas (and autograd's gradient check),
the synthetic click log's shapes, scales, determinism and hidden model, standardisation,
and the task for ``torchrun``."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from optbook.training.ranking import (CLICK_PROBABILITY, COUNT_FEATURES, PRICE_FEATURES,
                                      RATE_FEATURES, CrossLayer, DeepCrossNetwork,
                                      Standardizer, click_loss, ddp_task,
                                      expected_ctr_at_k, ndcg_at_k, ndcg_per_query,
                                      ranking_data, ranking_scores, standardize,
                                      synthetic_clicks)


# ----------------------------------------------------------------------- NDCG: references
def dcg_by_hand(ranked_relevance, k):
    """DCG@k of relevance values already in ranked order, written out term by term."""
    total = 0.0
    for i, rel in enumerate(ranked_relevance[:k], start=1):
        total += (2.0 ** rel - 1.0) / math.log2(i + 1)
    return total


def ndcg_brute_force(scores, relevance, k):
    """One query's NDCG@k: the DCG averaged over every order of the tied items, divided
    by the DCG of the best order."""
    ideal = dcg_by_hand(sorted(relevance, reverse=True), k)
    groups = {}
    for s, r in zip(scores, relevance):
        groups.setdefault(s, []).append(r)
    blocks = [groups[s] for s in sorted(groups, reverse=True)]
    orders = [list(itertools.permutations(b)) for b in blocks]
    values = [dcg_by_hand([r for block in combo for r in block], k)
              for combo in itertools.product(*orders)]
    return float(np.mean(values)) / ideal


# ----------------------------------------------------------------------- NDCG: hand cases
def test_perfect_ranking_scores_one():
    assert ndcg_at_k([0.9, 0.5, 0.3, 0.1], [3, 2, 1, 0], [0, 0, 0, 0]) == pytest.approx(1.0)


def test_reversed_ranking_by_hand():
    # gains 2^rel - 1 = 3, 1, 0; reversed order puts them at ranks 3, 2, 1
    expected = (0 / 1 + 1 / math.log2(3) + 3 / 2) / (3 / 1 + 1 / math.log2(3) + 0 / 2)
    got = ndcg_at_k([1.0, 2.0, 3.0], [2, 1, 0], [5, 5, 5])
    assert got == pytest.approx(expected, rel=1e-12)
    assert got == pytest.approx(0.58688, abs=1e-5)


def test_cut_off_at_k():
    scores, rel, q = [4.0, 3.0, 2.0, 1.0], [0, 3, 0, 0], [1, 1, 1, 1]
    # the only relevant item is at rank 2: at k = 1 nothing relevant is shown
    assert ndcg_at_k(scores, rel, q, k=1) == 0.0
    assert ndcg_at_k(scores, rel, q, k=2) == pytest.approx((7 / math.log2(3)) / 7)
    # items below k do not count, even when they are relevant
    assert ndcg_at_k([4.0, 3.0, 2.0], [1, 0, 3], [0, 0, 0], k=2) == pytest.approx(
        (1 / 1) / (7 / 1 + 1 / math.log2(3)))


def test_k_larger_than_the_list_uses_the_whole_list():
    assert ndcg_at_k([1.0, 2.0, 3.0], [2, 1, 0], [0] * 3, k=100) == pytest.approx(
        ndcg_at_k([1.0, 2.0, 3.0], [2, 1, 0], [0] * 3, k=3))


def test_ties_take_the_mean_gain_of_the_group():
    # all three tied: every rank gets mean gain (3 + 1 + 0)/3
    mean_gain = 4 / 3
    expected = mean_gain * (1 + 1 / math.log2(3) + 0.5) / (3 + 1 / math.log2(3))
    assert ndcg_at_k([0.5, 0.5, 0.5], [2, 1, 0], [0, 0, 0]) == pytest.approx(expected)
    # a tie straddling the cut-off k = 1: rank 1 gets the group's mean gain
    assert ndcg_at_k([1.0, 1.0, 0.0], [2, 0, 1], [0, 0, 0], k=1) == pytest.approx((3 / 2) / 3)


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    scores = rng.integers(0, 3 if seed % 2 else 100, n).astype(float)   # odd seeds: many ties
    rel = rng.integers(0, 4, n)
    rel[0] = max(rel[0], 1)
    for k in (1, 2, 3, 10):
        assert ndcg_at_k(scores, rel, np.zeros(n), k=k) == pytest.approx(
            ndcg_brute_force(scores.tolist(), rel.tolist(), k), rel=1e-12)


def test_several_queries_average_and_row_order_does_not_matter():
    rng = np.random.default_rng(3)
    q = np.repeat([10, 3, 7], [5, 4, 6])
    scores, rel = rng.standard_normal(len(q)), rng.integers(0, 4, len(q))
    rel[[0, 5, 9]] = 2
    per = [ndcg_brute_force(scores[q == i].tolist(), rel[q == i].tolist(), 3) for i in (3, 7, 10)]
    ids, values = ndcg_per_query(scores, rel, q, k=3)
    assert ids.tolist() == [3, 7, 10]
    np.testing.assert_allclose(values, per, rtol=1e-12)
    assert ndcg_at_k(scores, rel, q, k=3) == pytest.approx(np.mean(per))
    perm = rng.permutation(len(q))
    assert ndcg_at_k(scores[perm], rel[perm], q[perm], k=3) == pytest.approx(np.mean(per))


def test_queries_without_relevant_items():
    scores, rel, q = [3.0, 2.0, 1.0, 0.5, 0.2], [0, 1, 0, 0, 0], [0, 0, 0, 1, 1]
    good = (1 / math.log2(3)) / 1.0
    assert ndcg_at_k(scores, rel, q) == pytest.approx(good)                        # skipped
    assert ndcg_at_k(scores, rel, q, no_relevant="zero") == pytest.approx(good / 2)
    assert ndcg_at_k(scores, rel, q, no_relevant="one") == pytest.approx((good + 1) / 2)
    ids, _ = ndcg_per_query(scores, rel, q)
    assert ids.tolist() == [0]
    with pytest.raises(ValueError, match="no query has a relevant item"):
        ndcg_at_k([1.0, 2.0], [0, 0], [4, 4])


def test_accepts_tensors():
    got = ndcg_at_k(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2, 1, 0]), torch.tensor([0, 0, 0]))
    assert got == pytest.approx(0.58688, abs=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(scores=[1.0, 2.0], relevance=[1, 0, 0], query_ids=[0, 0, 0]), "same length"),
    (dict(scores=[1.0, 2.0], relevance=[1, 0], query_ids=[0, 0], k=0), "Invalid k"),
    (dict(scores=[1.0, 2.0], relevance=[1, 0], query_ids=[0, 0], k=2.5), "Invalid k"),
    (dict(scores=[1.0, 2.0], relevance=[1, 0], query_ids=[0, 0], k=True), "Invalid k"),
    (dict(scores=[1.0, float("nan")], relevance=[1, 0], query_ids=[0, 0]), "NaN"),
    (dict(scores=[1.0, 2.0], relevance=[1, -1], query_ids=[0, 0]), "non-negative"),
    (dict(scores=[[1.0, 2.0]], relevance=[1, 0], query_ids=[0, 0]), "one-dimensional"),
    (dict(scores=[], relevance=[], query_ids=[]), "empty"),
    (dict(scores=[1.0, 2.0], relevance=[1, 0], query_ids=[0, 0], no_relevant="ignore"),
     "no_relevant"),
])
def test_ndcg_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ndcg_at_k(**kwargs)


def test_expected_ctr_of_the_top_k_by_hand():
    p = [0.1, 0.6, 0.3, 0.03, 0.3, 0.1]
    scores = [3.0, 2.0, 1.0, 9.0, 1.0, 5.0]
    q = [0, 0, 0, 1, 1, 1]
    # query 0: top 2 are rows 0, 1 -> (0.1 + 0.6)/2; query 1: rows 3, 5 -> (0.03 + 0.1)/2
    assert expected_ctr_at_k(scores, p, q, k=2) == pytest.approx((0.35 + 0.065) / 2)
    with pytest.raises(ValueError, match="Invalid k"):
        expected_ctr_at_k(scores, p, q, k=0)
    with pytest.raises(ValueError, match="same length"):
        expected_ctr_at_k(scores[:2], p, q)


# ----------------------------------------------------------------------- the network
def test_vector_cross_layer_is_the_dcn_formula():
    torch.manual_seed(0)
    d, n = 5, 4
    layer = CrossLayer(d, "vector")
    with torch.no_grad():
        layer.bias.copy_(torch.randn(d))
    x0, xl = torch.randn(n, d), torch.randn(n, d)
    w, b = layer.weight.detach(), layer.bias.detach()
    expected = torch.empty(n, d)
    for r in range(n):
        dot = sum(float(xl[r, j] * w[j]) for j in range(d))        # x_l · w
        for i in range(d):
            expected[r, i] = x0[r, i] * dot + b[i] + xl[r, i]
    torch.testing.assert_close(layer(x0, xl), expected, rtol=1e-6, atol=1e-6)


def test_matrix_cross_layer_is_the_dcn_v2_formula():
    torch.manual_seed(1)
    d, n = 4, 3
    layer = CrossLayer(d, "matrix")
    with torch.no_grad():
        layer.bias.copy_(torch.randn(d))
    x0, xl = torch.randn(n, d), torch.randn(n, d)
    W, b = layer.weight.detach(), layer.bias.detach()
    expected = torch.stack([x0[r] * (W @ xl[r] + b) + xl[r] for r in range(n)])
    torch.testing.assert_close(layer(x0, xl), expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="Invalid kind"):
        CrossLayer(d, "diagonal")


def test_network_is_cross_tower_and_deep_tower_into_one_logit():
    net = DeepCrossNetwork(6, n_cross=2, hidden=(5, 3), seed=4)
    x0 = torch.randn(7, 6)
    x = x0
    for layer in net.cross:
        w, b = layer.weight, layer.bias
        x = x0 * (x @ w)[:, None] + b + x
    h = x0
    for lin in (net.deep[0], net.deep[2]):
        h = torch.relu(h @ lin.weight.T + lin.bias)
    expected = torch.cat([x, h], dim=1) @ net.head.weight[0] + net.head.bias
    torch.testing.assert_close(net(x0), expected, rtol=1e-5, atol=1e-6)
    assert net(x0).shape == (7,)


def test_cross_tower_multiplies_features():
    # with two cross layers and no deep tower, the logit is a polynomial of degree 3:
    # scaling the input by s scales the top-degree part by s^3
    net = DeepCrossNetwork(3, n_cross=2, hidden=(), seed=2).double()
    with torch.no_grad():
        net.head.bias.zero_()
        for layer in net.cross:
            layer.bias.zero_()
    x = torch.randn(4, 3, dtype=torch.float64)
    f = lambda s: net(s * x)                                    # noqa: E731
    # f(s) = a s + b s^2 + c s^3: the third finite difference isolates 6c, nonzero
    third = f(3.0) - 3 * f(2.0) + 3 * f(1.0) - f(0.0)
    assert torch.all(third.abs() > 1e-6)
    fourth = f(4.0) - 4 * f(3.0) + 6 * f(2.0) - 4 * f(1.0) + f(0.0)
    torch.testing.assert_close(fourth, torch.zeros_like(fourth), atol=1e-9, rtol=0)


@pytest.mark.parametrize("cross", ["vector", "matrix"])
def test_gradcheck_in_float64(cross):
    net = DeepCrossNetwork(4, n_cross=2, hidden=(3,), cross=cross, seed=0).double()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(net, (x,), eps=1e-6, atol=1e-6)
    # and with respect to every parameter, through the click loss
    names = [name for name, _ in net.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in net.parameters())
    clicks = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)

    def loss_of(*values):
        model = lambda X: functional_call(net, dict(zip(names, values)), (X,))   # noqa: E731
        return click_loss(model, (x.detach(), clicks))

    assert torch.autograd.gradcheck(loss_of, params, eps=1e-6, atol=1e-6)


def test_network_seed_and_bad_arguments():
    a, b, c = DeepCrossNetwork(8, seed=3), DeepCrossNetwork(8, seed=3), DeepCrossNetwork(8, seed=4)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        a(torch.randn(2, 7))
    with pytest.raises(ValueError, match="Invalid hidden"):
        DeepCrossNetwork(8, hidden=(4, 0))
    with pytest.raises(ValueError, match="needs cross layers or hidden"):
        DeepCrossNetwork(8, n_cross=0, hidden=())
    with pytest.raises(ValueError, match="Invalid n_features"):
        DeepCrossNetwork(0)


def test_ranking_scores_restores_training_mode():
    net = DeepCrossNetwork(5, seed=0)
    net.train()
    X = torch.randn(10, 5)
    s = ranking_scores(net, X, batch_size=3)
    assert net.training and s.dtype == np.float64 and s.shape == (10,)
    np.testing.assert_allclose(s, net(X).detach().double().numpy(), rtol=1e-6)


# ----------------------------------------------------------------------- the click log
@pytest.fixture(scope="module")
def log():
    return synthetic_clicks(n_queries=300, products_per_query=20, n_features=216, seed=5)


def test_click_log_shapes_and_layout(log):
    n = 300 * 20
    assert log.X.shape == (n, 216) and log.X.dtype == torch.float32
    for t in (log.clicks, log.relevance, log.query_ids, log.click_probability, log.signal,
              log.is_outlier):
        assert t.shape == (n,)
    assert len(log) == n and log.n_queries == 300
    assert log.query_ids.tolist()[:21] == [0] * 20 + [1]
    assert len(log.feature_names) == 216
    assert sum(len(v) for v in log.groups.values()) == 216
    assert [log.feature_names[i] for i in log.groups["price"]] == list(PRICE_FEATURES)
    assert [log.feature_names[i] for i in log.groups["rate"]] == list(RATE_FEATURES)
    assert [log.feature_names[i] for i in log.groups["count"]] == list(COUNT_FEATURES)
    assert not bool(log.is_outlier.any())


def test_features_have_very_different_scales(log):
    X = log.X
    prices = X[:, log.groups["price"][:2]]                       # price and mrp, in rupees
    assert 100 < float(prices.median()) < 10_000 and float(prices.max()) > 10_000
    rates = X[:, log.groups["rate"]]
    assert float(rates.min()) >= 0.0 and float(rates.max()) <= 1.0
    counts = X[:, log.groups["count"]]
    assert torch.equal(counts, counts.round()) and float(counts.max()) > 1_000
    emb = X[:, log.groups["product_embedding"]]
    assert abs(float(emb.mean())) < 0.02 and float(emb.std()) == pytest.approx(1.0, abs=0.02)
    # the columns span many orders of magnitude
    spread = X.abs().max(dim=0).values
    assert float(spread.max() / spread[log.groups["rate"]].min()) > 1e4


def test_hidden_model_grades_and_clicks(log):
    rel = log.relevance.numpy()
    share = np.bincount(rel, minlength=4) / len(rel)
    np.testing.assert_allclose(share, [0.55, 0.25, 0.13, 0.07], atol=0.03)
    for grade, p in enumerate(CLICK_PROBABILITY):
        rows = rel == grade
        assert np.allclose(log.click_probability.numpy()[rows], p)
        observed = log.clicks.numpy()[rows].mean()
        assert observed == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / rows.sum()) + 1e-3)
    # the features carry the signal: ranking by it beats a random order by far
    good = ndcg_at_k(log.signal, log.relevance, log.query_ids)
    random_order = ndcg_at_k(np.zeros(len(rel)), log.relevance, log.query_ids)
    assert good > 0.9 > 0.5 > random_order


def test_click_log_is_deterministic_and_seeds_share_one_world():
    a = synthetic_clicks(20, 10, 216, seed=1)
    b = synthetic_clicks(20, 10, 216, seed=1)
    c = synthetic_clicks(20, 10, 216, seed=2)
    for name in ("X", "clicks", "relevance", "signal"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.X, c.X)
    # another world moves the grade cut points, the same world keeps them
    big1 = synthetic_clicks(400, 20, 216, seed=3)
    big2 = synthetic_clicks(400, 20, 216, seed=4)
    other = synthetic_clicks(400, 20, 216, seed=3, world_seed=9)
    assert abs(float(big1.relevance.float().mean() - big2.relevance.float().mean())) < 0.05
    assert not torch.equal(big1.relevance, other.relevance)


def test_outliers_are_extreme_after_standardisation():
    log = synthetic_clicks(200, 20, 216, seed=0, outliers=12)
    out = log.is_outlier
    assert int(out.sum()) == 12
    assert bool((log.clicks[out] == 1).all())
    rate = log.groups["rate"][0]                                 # historical click rate
    assert bool((log.X[out, rate] == 0.9).all())
    (Z,) = standardize(log.X, log_columns=log.groups["price"] + log.groups["count"])
    assert float(Z[out, rate].min()) > 8.0 > float(torch.quantile(Z[~out, rate].abs(), 0.999))
    with pytest.raises(ValueError, match="Invalid outliers"):
        synthetic_clicks(2, 3, 216, outliers=7)


@pytest.mark.parametrize("kwargs", [dict(n_queries=0), dict(products_per_query=1),
                                    dict(n_features=20), dict(seed=-1), dict(n_queries=2.5),
                                    dict(outliers=-1)])
def test_click_log_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Invalid"):
        synthetic_clicks(**{"n_queries": 3, "products_per_query": 4, **kwargs})


# ----------------------------------------------------------------------- standardisation
def test_standardize_fits_on_train_only():
    train = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    test = torch.tensor([[7.0, 12.0]])
    tr, te = standardize(train, test)
    torch.testing.assert_close(tr[:, 0], torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(tr[:, 1], torch.zeros(3))                 # constant: only centred
    torch.testing.assert_close(te, torch.tensor([[2.0, 2.0]]))           # (7-3)/2, (12-10)/1


def test_standardize_log_columns():
    train = torch.tensor([[0.0, 1.0], [99.0, 2.0], [9999.0, 3.0]])
    (tr,) = standardize(train, log_columns=[0])
    logged = torch.log1p(train[:, 0])
    torch.testing.assert_close(tr[:, 0], (logged - logged.mean()) / logged.std())
    with pytest.raises(ValueError, match="non-negative"):
        standardize(torch.tensor([[-1.0], [2.0]]), log_columns=[0])
    with pytest.raises(ValueError, match="out of range"):
        standardize(train, log_columns=[5])


def test_standardizer_errors():
    with pytest.raises(RuntimeError, match="before fit"):
        Standardizer().transform(torch.zeros(2, 2))
    s = Standardizer().fit(torch.randn(5, 3))
    with pytest.raises(ValueError, match="fitted on 3 columns"):
        s.transform(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="2-D"):
        Standardizer().fit(torch.zeros(5))
    with pytest.raises(ValueError, match="two rows"):
        Standardizer().fit(torch.zeros(1, 3))


def test_ranking_data_standardises_with_training_statistics():
    train, test = ranking_data(n_queries=60, products_per_query=10, test_queries=30)
    assert torch.allclose(train.X.mean(0), torch.zeros(216), atol=1e-4)
    assert not torch.allclose(test.X.mean(0), torch.zeros(216), atol=1e-3)
    assert len(train) == 600 and len(test) == 300


# ----------------------------------------------------------------------- the torchrun task
def test_ddp_task_trains_with_the_pipeline(tmp_path):
    from optbook.training.cli import Task, main
    from optbook.training.config import TrainConfig
    from optbook.training.loop import fit

    kwargs = dict(n_queries=40, products_per_query=8, test_queries=20, hidden=(16,))
    task = ddp_task(**kwargs)
    assert isinstance(task, Task) and len(task.dataset) == 320
    assert task.config_overrides["optimizer"] == "adamw"
    config = TrainConfig(**{**task.config_overrides, "epochs": 2, "batch_size": 64, "lr": 3e-3})
    result = fit(task.model, task.dataset, task.loss_fn, config, eval_fn=task.eval_fn,
                 device=torch.device("cpu"))
    metrics = result.epoch_metrics[-1]
    assert 0.0 < metrics["ndcg@10"] <= 1.0 and math.isfinite(metrics["test_loss"])
    # the same task from the command line (one process) gives the same run
    import json
    out = tmp_path / "r.json"
    assert main(["--task", "optbook.training.ranking:ddp_task", "--task-kwargs", json.dumps(kwargs),
                 "--epochs", "2", "--batch-size", "64", "--lr", "3e-3", "--device", "cpu",
                 "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert [r["loss"] for r in saved["history"]] == pytest.approx(
        [r["loss"] for r in result.history], rel=1e-6)
    assert saved["epoch_metrics"][-1]["ndcg@10"] == pytest.approx(metrics["ndcg@10"], rel=1e-6)
