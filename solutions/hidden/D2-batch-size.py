"""Checks of D2-batch-size (the format: ``optbook.grade.checks``).

Built by ``python -m optbook.grade.assign`` from the hidden-test cells of its master,
``solutions/masters/D2-batch-size.md``: edit the master, not this file.
"""

from optbook.grade.checks import Checks

checks = Checks()


# Checks of exercise D2, the batch-size experiment (see ``optbook.grade.checks``).
#
# They assert only what every correct solution satisfies.  The probes train the
# student's network on small generated data (written into the probes) and report what
# moved, or report what ``results`` and ``fig`` hold; the judges decide here, in the
# grader.  The grader runs D2's short setting (``OPTBOOK_GRADING=1``): 2 epochs.

import math

import numpy as np


BATCH_SIZES = tuple(2 ** k for k in range(4, 13))  # 16 … 4096, as in the notebook's setup
EPOCHS = 2  # in the grader's short setting
LR = 0.001
LARGEST_STEP = LR * (1 - 0.9) / (1 - 0.999) ** 0.5  # Adam's largest step (Kingma & Ba, section 2.1)


def moves_probe(data_seed: int, model_seed: int, batch_size: int) -> str:
    """A probe: train_one for one epoch on 64 generated examples; the largest change of a
    weight, whether the trained network is make_model(seed)'s, and the record's lengths."""
    return f"""
import torch
gen = torch.Generator().manual_seed({data_seed})
X = torch.rand(64, 784, generator=gen)
y = torch.randint(0, 10, (64,), generator=gen)
before = [p.detach().clone() for p in make_model({model_seed}).parameters()]
rec = train_one({batch_size}, 1, X, y, X[:16], y[:16], seed={model_seed})
after = [p.detach().cpu() for p in rec["model"].parameters()]
same = len(before) == len(after) and all(a.shape == b.shape for a, b in zip(before, after))
{{"same": same, "move": torch.cat([(a - b).abs().flatten() for a, b in zip(after, before)]).max().item()
          if same else None, "losses": len(rec["loss"]), "times": len(rec["seconds"])}}
"""


# One epoch with the whole (tiny) data set as the batch is exactly one Adam update, and
# Adam's first update moves every weight by at most α (|m̂ / (√v̂ + ε)| < 1 at t = 1),
# by almost exactly α where the gradient is clearly non-zero.
@checks.add("D2-one-step", points=2, probe=moves_probe(7, 5, 64))
def _(sent):
    assert sent["same"] is True, "D2: train_one must train the network make_model(seed) builds."
    move = float(sent["move"])
    assert move <= LR * (1 + 1e-4), (
        "D2: with batch_size equal to the number of examples, one epoch must make exactly one "
        f"Adam update with lr = LR = 0.001; a weight moved by {move:.3g}. Does "
        "train_one start from make_model(seed), use Adam(lr=LR) and batches of batch_size?")
    assert move >= LR * 0.99, (
        "D2: after one epoch (one Adam update with lr = 0.001) the weights should have moved "
        "by about 0.001; they barely moved. Does train_one call optimizer.step()?")


# With B = 16 on the same 64 examples, one epoch is 4 updates: some weight moves by more
# than one step's α, but by no more than four of Adam's largest steps.
@checks.add("D2-batches", points=2, probe=moves_probe(8, 2, 16))
def _(sent):
    move = float(sent["move"])
    assert LR * 1.5 < move <= 4 * LARGEST_STEP, (
        "D2: with 64 examples and batch_size = 16, one epoch must make four Adam updates "
        f"with lr = 0.001; the largest weight change, {move:.3g}, does not fit "
        "four updates. Does train_one use batches of batch_size?")
    assert sent["losses"] == 1 and sent["times"] == 1, (
        "D2: train_one(batch_size, 1, ...) must return one loss and one CPU time.")


# Each reported test accuracy is the accuracy of the network returned with it (the probe
# measures it with the student's network on X_test).
@checks.add("D2-accuracy", points=2, probe="""
import torch
measured = []
for B, record in results.items():
    model = record["model"]
    device = next(model.parameters()).device
    with torch.no_grad():
        predicted = model(X_test.to(device)).argmax(dim=1).cpu()
    measured.append([B, float(record["accuracy"]), (predicted == y_test).double().mean().item()])
measured
""")
def _(measured):
    assert sorted(batch for batch, *_ in measured) == sorted(BATCH_SIZES), (
        f"D2: results must have one entry per batch size {BATCH_SIZES}.")
    for batch, reported, accuracy in measured:
        assert abs(reported - accuracy) < 1e-4, (
            f"D2: results[{batch}]['accuracy'] = {reported:.4f}, but its network "
            f"classifies {accuracy:.4f} of X_test correctly. Report the test accuracy as a fraction, "
            "measured on X_test after the last epoch.")


# The small batches learn (far above the 10 % of guessing) and, with the same number of
# epochs, end with a lower training loss than the largest batch, which makes far fewer updates.
@checks.add("D2-learning", points=2, probe="""
[[B, [float(loss) for loss in record["loss"]], float(record["accuracy"])] for B, record in results.items()]
""")
def _(runs):
    losses = {batch: loss for batch, loss, _ in runs}
    small, large = min(losses), max(losses)
    best = max(accuracy for _, _, accuracy in runs)
    assert best > 0.5, (
        f"D2: the best test accuracy is {best:.1%}; a working network reaches well over 50 % "
        "even in the grader's short run. Check the training loop and the accuracy.")
    assert losses[small][-1] < losses[large][-1], (
        f"D2: after {EPOCHS} epochs the training loss at B = {small} should be below that at "
        f"B = {large} (many more updates); the record says otherwise.")
    assert losses[small][-1] < losses[small][0], (
        f"D2: at B = {small} the mean training loss should fall from the first to the last epoch.")


# The figure has three plots with data: loss curves (one per batch size, one point per
# epoch), and two plots against the batch sizes.
@checks.add("D2-figure", points=2, probe="""
import numpy as np
from optbook.grade.probe import type_names
{"types": type_names(fig),
 "axes": [{"lines": [np.asarray(l.get_xdata(), dtype=float).tolist() for l in ax.lines],
           "points": [np.asarray(c.get_offsets())[:, 0].astype(float).tolist()
                      for c in ax.collections if len(c.get_offsets())]}
          for ax in fig.axes if ax.lines or ax.collections]}
""")
def _(sent):
    assert "matplotlib.figure.Figure" in sent["types"], "D2: fig must be a matplotlib Figure."
    axes = sent["axes"]
    assert len(axes) >= 3, f"D2: the figure needs three plots with data; it has {len(axes)}."
    curves = max(sum(len(x) == EPOCHS for x in ax["lines"]) for ax in axes)
    assert curves >= len(BATCH_SIZES), (
        f"D2: one plot must show the loss per epoch for each of the {len(BATCH_SIZES)} batch "
        f"sizes ({EPOCHS} points each); the most curves of that length in one plot is {curves}.")
    sizes = sorted(BATCH_SIZES)

    def against_batch_sizes(ax):
        return any(len(x) == len(sizes) and (np.allclose(np.sort(x), sizes)
                                             or np.allclose(np.sort(x), np.log2(sizes)))
                   for x in ax["lines"] + ax["points"])

    assert sum(against_batch_sizes(ax) for ax in axes) >= 2, (
        "D2: two plots must show a value for each batch size against the batch size (test "
        "accuracy and CPU time per epoch).")


# The notebook's two visible self-checks, judged here for their points.
@checks.add("D2-model-shape", points=1, probe="""
import torch
from torch import nn
net = make_model(0)
linear = [m for m in net.modules() if isinstance(m, nn.Linear)]
{"shapes": [list(m.weight.shape) for m in linear],
 "relus": sum(isinstance(m, nn.ReLU) for m in net.modules()),
 "parameters": sum(p.numel() for p in net.parameters()), "output": list(net(torch.zeros(5, 784)).shape),
 "repeatable": all(torch.equal(a, b) for a, b in zip(make_model(3).state_dict().values(),
                                                     make_model(3).state_dict().values()))}
""")
def _(net):
    assert net["shapes"] == [[256, 784], [128, 256], [10, 128]], (
        "make_model must have three linear layers of shapes 784 → 256 → 128 → 10, in order; "
        f"found {[tuple(shape)[::-1] for shape in net['shapes']]} (in → out).")
    assert net["relus"] == 2, "Use a ReLU after each hidden layer."
    assert net["parameters"] == 235_146, "784·256 + 256 + 256·128 + 128 + 128·10 + 10 parameters"
    assert net["output"] == [5, 10], "The network maps (n, 784) to (n, 10) logits."
    assert net["repeatable"] is True, (
        "make_model(seed) must give the same initial weights for the same seed.")


@checks.add("D2-results-form", points=1, probe="""
from optbook.grade.probe import type_names
{"types": type_names(results),
 "records": [[B, sorted(map(str, record)), [float(x) for x in record.get("loss", [])],
              [float(x) for x in record.get("seconds", [])], float(record.get("accuracy", "nan"))]
             for B, record in results.items()] if isinstance(results, dict) else []}
""")
def _(sent):
    assert "builtins.dict" in sent["types"], "results must be a dict."
    records = sent["records"]
    assert sorted(batch for batch, *_ in records) == sorted(BATCH_SIZES), (
        f"results must have one entry per batch size {BATCH_SIZES}.")
    for batch, keys, losses, seconds, accuracy in records:
        assert {"loss", "accuracy", "seconds", "model"} <= set(keys), f"results[{batch}] misses keys."
        assert len(losses) == EPOCHS and len(seconds) == EPOCHS, (
            f"results[{batch}] needs one loss and one CPU time per epoch ({EPOCHS}).")
        assert all(math.isfinite(loss) and loss > 0 for loss in losses), (
            f"results[{batch}]['loss'] must hold positive, finite mean losses.")
        assert 0.0 <= accuracy <= 1.0, f"results[{batch}]['accuracy'] must be a fraction in [0, 1]."
        assert all(s > 0 for s in seconds), f"results[{batch}]['seconds'] must hold positive CPU times."
