"""The opening's fraud story, reproduced small: AUC against hand-computed cases and a
pairwise count, the synthetic transactions' shape, scales, determinism and positive
rate, and the training loop against torch.optim and torch's cosine scheduler."""

import math

import numpy as np
import pytest
import torch

from optbook.training.fraud import (AMOUNT_FEATURES, FLAG_FEATURES, RATE_FEATURES,
                                    fraud_data, best_loss, logistic_model, mean_loss,
                                    roc_auc, synthetic_transactions, train_until)


def auc_by_pairs(scores, labels):
    """P(score of a positive > score of a negative), ties counting 1/2, over all pairs."""
    pos = [s for s, t in zip(scores, labels) if t == 1]
    neg = [s for s, t in zip(scores, labels) if t == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


# ----------------------------------------------------------------------- AUC
def test_auc_hand_cases():
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0          # perfect
    assert roc_auc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0          # reversed
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5          # all tied
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: 0.35 beats one, 0.8 beats both -> 3/4
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    # a tie across the classes counts one half: pairs (0.5>0.2), (0.5=0.5) -> 1.5/2
    assert roc_auc([0.2, 0.5, 0.5], [0, 0, 1]) == 0.75


@pytest.mark.parametrize("seed", range(10))
def test_auc_equals_the_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 6, n) if seed % 2 else rng.standard_normal(n)   # odd: many ties
    assert roc_auc(scores, labels) == pytest.approx(auc_by_pairs(scores, labels), abs=1e-12)


def test_auc_is_unchanged_by_monotone_maps_and_accepts_tensors():
    rng = np.random.default_rng(1)
    s, t = rng.standard_normal(200), (rng.random(200) < 0.2).astype(int)
    t[0] = 1
    assert roc_auc(np.exp(3 * s), t) == pytest.approx(roc_auc(s, t))
    assert roc_auc(torch.tensor(s), torch.tensor(t)) == pytest.approx(roc_auc(s, t))


@pytest.mark.parametrize("scores, labels, message", [
    ([0.1, 0.2], [1, 1], "both classes"),
    ([0.1, 0.2], [0, 0], "both classes"),
    ([0.1, 0.2, 0.3], [0, 1], "same length"),
    ([0.1, 0.2], [0, 2], "0 or 1"),
    ([0.1, float("nan")], [0, 1], "NaN"),
    ([[0.1, 0.2]], [0, 1], "1-D"),
])
def test_auc_rejects_bad_input(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        roc_auc(scores, labels)


# ----------------------------------------------------------------------- the data
@pytest.fixture(scope="module")
def table():
    return synthetic_transactions(n=40_000, seed=3)


def test_transactions_shape_groups_and_scales(table):
    assert table.X.shape == (40_000, 186) and table.y.shape == (40_000,)
    assert len(table.feature_names) == 186
    assert sum(len(v) for v in table.groups.values()) == 186
    X = table.X
    amount = X[:, table.feature_names.index("amount")]
    assert 100 < float(amount.median()) < 10_000 and float(amount.max()) > 50_000
    rates = X[:, table.groups["rate"]]
    assert float(rates.min()) >= 0 and float(rates.max()) <= 1
    flags = X[:, table.groups["flag"]]
    assert set(torch.unique(flags).tolist()) == {0.0, 1.0}
    emb = X[:, table.groups["embedding"]]
    assert float(emb.std()) == pytest.approx(1.0, abs=0.02)
    assert [table.feature_names[i] for i in table.groups["amount"]] == list(AMOUNT_FEATURES)
    assert [table.feature_names[i] for i in table.groups["rate"]] == list(RATE_FEATURES)
    assert [table.feature_names[i] for i in table.groups["flag"]] == list(FLAG_FEATURES)


def test_positives_are_rare_and_follow_the_hidden_probability(table):
    rate = table.positive_rate
    assert 0.005 <= rate <= 0.02
    p = table.p_fraud.double()
    # the labels are Bernoulli(p): their count agrees with the sum of p to a few sigma
    sigma = math.sqrt(float((p * (1 - p)).sum()))
    assert abs(float(table.y.sum()) - float(p.sum())) < 4 * sigma
    # the hidden probability ranks fraud well, far better than chance
    assert roc_auc(table.p_fraud, table.y) > 0.9
    for target in (0.005, 0.02):
        assert synthetic_transactions(n=40_000, positive_rate=target, seed=1).positive_rate == \
            pytest.approx(target, rel=0.25)


def test_transactions_are_deterministic():
    a, b = synthetic_transactions(n=500, seed=7), synthetic_transactions(n=500, seed=7)
    c = synthetic_transactions(n=500, seed=8)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
    assert not torch.equal(a.X, c.X)


@pytest.mark.parametrize("kwargs", [dict(n=1), dict(n_features=60), dict(positive_rate=0.0),
                                    dict(positive_rate=0.7), dict(seed=-2), dict(n=10.5)])
def test_transactions_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Invalid"):
        synthetic_transactions(**{"n": 100, **kwargs})


def test_fraud_data_standardises_with_training_statistics():
    train, valid = fraud_data(n_train=4000, n_valid=2000)
    assert torch.allclose(train.X.mean(0), torch.zeros(186), atol=1e-4)
    assert float(train.X.std(0).min()) == pytest.approx(1.0, abs=1e-3)
    assert not torch.allclose(valid.X.mean(0), torch.zeros(186), atol=1e-3)


# ----------------------------------------------------------------------- model and loop
def test_logistic_model_starts_at_the_base_rate():
    m = logistic_model(5, positive_rate=0.01)
    assert torch.all(m.weight == 0)
    assert torch.sigmoid(m.bias).item() == pytest.approx(0.01)
    assert logistic_model(5).bias.item() == 0.0
    with pytest.raises(ValueError, match="positive_rate"):
        logistic_model(5, positive_rate=1.0)


def test_mean_loss_is_the_mean_binary_cross_entropy():
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 1)
    X, y = torch.randn(300, 4), (torch.rand(300) < 0.3).float()
    expected = torch.nn.functional.binary_cross_entropy(torch.sigmoid(m(X).squeeze(1)), y).item()
    assert mean_loss(m, X, y, batch_size=64) == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope="module")
def small():
    return fraud_data(n_train=4096, n_valid=4096)


def test_one_full_batch_epoch_is_one_gradient_step(small):
    train, valid = small
    model = logistic_model(186, positive_rate=0.02)
    run = train_until(model, train, valid, batch_size=len(train), optimizer="gd", lr=0.5,
                      max_epochs=1, target_loss=-1.0)
    ref = logistic_model(186, positive_rate=0.02)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(ref(train.X).squeeze(1), train.y)
    loss.backward()
    with torch.no_grad():
        expected_w = ref.weight - 0.5 * ref.weight.grad
    torch.testing.assert_close(model.weight, expected_w)
    assert run.updates == 1 and run.epochs.tolist() == [0.0, 1.0]
    assert run.reached is None and math.isnan(run.epochs_to_target)
    assert run.losses[-1] == pytest.approx(mean_loss(model, train.X, train.y))


def test_minibatch_adam_with_cosine_matches_torch(small):
    train, valid = small
    B, lr, epochs = 512, 0.02, 2
    model = logistic_model(186)
    train_until(model, train, valid, batch_size=B, optimizer="adam", lr=lr, schedule="cosine",
                max_epochs=epochs, target_loss=-1.0, seed=4)
    # the reference: torch's Adam and CosineAnnealingLR stepped once per update, on the
    # same batches (the loop reshuffles with a generator seeded by `seed`, every epoch)
    ref = logistic_model(186)
    opt = torch.optim.Adam(ref.parameters(), lr=lr)
    per_epoch = math.ceil(len(train) / B)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * per_epoch)
    g = torch.Generator().manual_seed(4)
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=g)
        for start in range(0, len(train), B):
            idx = order[start:start + B]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                ref(train.X[idx]).squeeze(1), train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    torch.testing.assert_close(model.weight, ref.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.bias, ref.bias, rtol=1e-5, atol=1e-6)


def test_the_run_stops_at_the_target_and_times_only_updates(small):
    train, valid = small
    start = mean_loss(logistic_model(186, 0.02), train.X, train.y)
    run = train_until(logistic_model(186, 0.02), train, valid, batch_size=256, optimizer="adam",
                      lr=0.01, max_epochs=5, target_loss=start * 0.8, checks_per_epoch=4)
    assert run.reached is not None and run.reached == len(run.losses) - 1
    assert run.losses[run.reached] <= start * 0.8 < run.losses[run.reached - 1]
    assert 0 < run.epochs_to_target < 5 and run.seconds_to_target > 0
    assert np.all(np.diff(run.seconds) >= 0) and np.all(np.diff(run.epochs) > 0)
    assert 0.5 < run.auc <= 1.0
    # a target already met stops before any update
    done = train_until(logistic_model(186, 0.02), train, valid, batch_size=256, lr=0.1,
                       max_epochs=1, target_loss=10.0)
    assert done.reached == 0 and done.updates == 0 and done.epochs_to_target == 0.0


def test_best_loss_equals_newtons_minimum():
    from optbook.minibatch import logistic_data, logistic_minimum

    X, y, *_ = logistic_data(N=3000, D=6, seed=2)            # (D, N) and (1, N)
    newton, _ = logistic_minimum(X, y)
    got = best_loss(torch.tensor(X.T, dtype=torch.float32), torch.tensor(y[0], dtype=torch.float32))
    assert got == pytest.approx(newton, rel=1e-6)


def test_training_approaches_the_best_loss_from_above():
    train, valid = fraud_data(n_train=16_384, n_valid=2048)
    floor = best_loss(train.X, train.y)
    run = train_until(logistic_model(186, train.positive_rate), train, valid,
                      batch_size=len(train), optimizer="gd", lr=8.0, max_epochs=40,
                      target_loss=-1.0)
    assert floor < run.losses.min() < 1.5 * floor
    assert np.all(np.diff(run.losses) < 0)                # small steps: the loss only falls


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="rmsprop"), "Invalid optimizer"), (dict(schedule="step"), "Invalid schedule"),
    (dict(lr=0.0), "Invalid lr"), (dict(batch_size=0), "Invalid batch_size"),
    (dict(max_epochs=0), "Invalid max_epochs"), (dict(checks_per_epoch=0), "Invalid checks"),
])
def test_train_until_rejects_bad_arguments(small, kwargs, message):
    train, valid = small
    args = {**dict(batch_size=64, lr=0.1, max_epochs=1, target_loss=0.0), **kwargs}
    with pytest.raises(ValueError, match=message):
        train_until(logistic_model(186), train, valid, **args)
