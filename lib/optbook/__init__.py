"""optbook: the library that grows out of Chapter 8, "Optimization".

Modules follow the order in which the chapter teaches them:

========================  =====================================================
``optbook.notation``      the book's one notation table (symbols ↔ code names)
``optbook.minibatch``     8.1 mini-batches, the batch-size experiments, LR scaling rules
``optbook.ewa``           8.3 exponentially weighted averages
``optbook.optimizers``    8.4–8.6 SGD, momentum, RMSprop, AdaGrad, Adam, AdamW (readable
                          steps; the classes run them in place, in chunks — Appendix A)
``optbook.onepass``       the optimizers' kernels traced into one C loop per step (Appendix A)
``optbook.schedules``     8.7 learning-rate schedules
``optbook.surfaces``      2-D loss surfaces for figures and the playground
``optbook.plotting``      figure helpers shared by the chapter pages
``optbook.widgets``       sliders that also work in the static site
``optbook.models``        small models with hand-written gradients (the comparison problem)
``optbook.torch_loops``   small PyTorch models and a scheduled training loop (8.7 warm-up)
``optbook.train``         Create: the training pipeline — AdamW, warm-up → cosine, clipping,
                          LR scaling, checkpoints, DDP (python -m optbook.train)
``optbook.ranking``       the search-ranking case study: click data, DCN, NDCG@10
``optbook.fraud``         the opening's fraud story: transactions, ROC AUC, time to target
``optbook.playground``    what the playground app and page share
``optbook.data``          small generated data sets (no downloads)
``optbook.idx``           MNIST-format (IDX) files that load offline (exercise D2)
``optbook.device``        where PyTorch runs: CUDA when present, else the CPU
``optbook.pages``         plumbing for the pages (glue)
``optbook.grade``         the instructors' grader (python -m optbook.grade)
``optbook.check``         the students' self-check (python -m optbook.check)
========================  =====================================================
"""

__version__ = "0.1.0"
