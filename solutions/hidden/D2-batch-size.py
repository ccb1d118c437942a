# %% D2-one-step points=2
# (Hidden checks of exercise D2: they assert only what every correct solution satisfies.)
# One epoch with the whole (tiny) data set as the batch is exactly one Adam update, and
# Adam's first update moves every weight by at most α (|m̂ / (√v̂ + ε)| < 1 at t = 1),
# by almost exactly α where the gradient is clearly non-zero.
import torch as _torch
_gen = _torch.Generator().manual_seed(7)
_X = _torch.rand(64, 784, generator=_gen)
_y = _torch.randint(0, 10, (64,), generator=_gen)
_before = [p.detach().clone() for p in make_model(5).parameters()]
_rec = train_one(64, 1, _X, _y, _X[:16], _y[:16], seed=5)
_after = [p.detach().cpu() for p in _rec["model"].parameters()]
assert len(_before) == len(_after) and all(a.shape == b.shape for a, b in zip(_before, _after)), (
    "D2: train_one must train the network make_model(seed) builds.")
_moves = _torch.cat([(a - b).abs().flatten() for a, b in zip(_after, _before)])
assert _moves.max().item() <= 0.001 * (1 + 1e-4), (
    "D2: with batch_size equal to the number of examples, one epoch must make exactly one "
    f"Adam update with lr = LR = 0.001; a weight moved by {_moves.max().item():.3g}. Does "
    "train_one start from make_model(seed), use Adam(lr=LR) and batches of batch_size?")
assert _moves.max().item() >= 0.001 * 0.99, (
    "D2: after one epoch (one Adam update with lr = 0.001) the weights should have moved "
    "by about 0.001; they barely moved. Does train_one call optimizer.step()?")

# %% D2-batches points=2
# With B = 16 on the same 64 examples, one epoch is 4 updates: some weight moves by more
# than one step's α, but by no more than four of Adam's largest steps, α(1 − β₁)/√(1 − β₂)
# each (Kingma & Ba, section 2.1).
import torch as _torch
_gen = _torch.Generator().manual_seed(8)
_X = _torch.rand(64, 784, generator=_gen)
_y = _torch.randint(0, 10, (64,), generator=_gen)
_before = [p.detach().clone() for p in make_model(2).parameters()]
_rec = train_one(16, 1, _X, _y, _X[:16], _y[:16], seed=2)
_moves = _torch.cat([(p.detach().cpu() - b).abs().flatten()
                     for p, b in zip(_rec["model"].parameters(), _before)])
_largest_step = 0.001 * (1 - 0.9) / (1 - 0.999) ** 0.5
assert 0.001 * 1.5 < _moves.max().item() <= 4 * _largest_step, (
    "D2: with 64 examples and batch_size = 16, one epoch must make four Adam updates "
    f"with lr = 0.001; the largest weight change, {_moves.max().item():.3g}, does not fit "
    "four updates. Does train_one use batches of batch_size?")
assert len(_rec["loss"]) == 1 and len(_rec["seconds"]) == 1, (
    "D2: train_one(batch_size, 1, ...) must return one loss and one time.")

# %% D2-accuracy points=2
# Each reported test accuracy is the accuracy of the network returned with it.
import torch as _torch
for _batch, _record in results.items():
    _model = _record["model"]
    _dev = next(_model.parameters()).device
    with _torch.no_grad():
        _pred = _model(X_test.to(_dev)).argmax(dim=1).cpu()
    _acc = (_pred == y_test).double().mean().item()
    assert abs(float(_record["accuracy"]) - _acc) < 1e-4, (
        f"D2: results[{_batch}]['accuracy'] = {float(_record['accuracy']):.4f}, but its network "
        f"classifies {_acc:.4f} of X_test correctly. Report the test accuracy as a fraction, "
        "measured on X_test after the last epoch.")

# %% D2-learning points=2
# The small batches learn (far above the 10 % of guessing) and, with the same number of
# epochs, end with a lower training loss than the largest batch, which makes far fewer updates.
_small, _large = min(results), max(results)
_best = max(float(r["accuracy"]) for r in results.values())
assert _best > 0.5, (
    f"D2: the best test accuracy is {_best:.1%}; a working network reaches well over 50 % "
    "even in the grader's short run. Check the training loop and the accuracy.")
assert float(results[_small]["loss"][-1]) < float(results[_large]["loss"][-1]), (
    f"D2: after {EPOCHS} epochs the training loss at B = {_small} should be below that at "
    f"B = {_large} (many more updates); the record says otherwise.")
if EPOCHS > 1:
    assert float(results[_small]["loss"][-1]) < float(results[_small]["loss"][0]), (
        f"D2: at B = {_small} the mean training loss should fall from the first to the last epoch.")

# %% D2-figure points=2
# The figure has three plots with data: loss curves (one per batch size, one point per
# epoch), and two plots against the batch sizes.
import matplotlib.figure as _mfig
import numpy as _np
assert isinstance(fig, _mfig.Figure), f"D2: fig must be a matplotlib Figure, not {type(fig).__name__}."
_axes = [a for a in fig.axes if a.lines or a.collections]
assert len(_axes) >= 3, f"D2: the figure needs three plots with data; it has {len(_axes)}."
_curves = max(sum(len(l.get_xdata()) == EPOCHS for l in a.lines) for a in _axes)
assert _curves >= len(BATCH_SIZES), (
    f"D2: one plot must show the loss per epoch for each of the {len(BATCH_SIZES)} batch "
    f"sizes ({EPOCHS} points each); the most curves of that length in one plot is {_curves}.")

def _against_batch_sizes(ax):
    xs = [_np.asarray(l.get_xdata(), dtype=float) for l in ax.lines]
    xs += [_np.asarray(c.get_offsets())[:, 0] for c in ax.collections if len(c.get_offsets())]
    return any(len(x) == len(BATCH_SIZES) and _np.allclose(_np.sort(x), sorted(BATCH_SIZES))
               or len(x) == len(BATCH_SIZES) and _np.allclose(_np.sort(x), _np.log2(sorted(BATCH_SIZES)))
               for x in xs)

assert sum(_against_batch_sizes(a) for a in _axes) >= 2, (
    "D2: two plots must show a value for each batch size against the batch size (test "
    "accuracy and time per epoch).")
