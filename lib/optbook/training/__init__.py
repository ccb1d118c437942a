"""optbook.training: the training pipeline and the case studies that run on it.

For readers of the chapter's "Create" objective and the case studies (8.2, 8.14–8.15),
and for anyone training with it from the command line
(``python -m optbook.training --task MODULE:FUNC [settings]``).

============================  =====================================================
``training.loop``             :func:`fit`: warm-up, cosine, clipping, AMP, DDP, resume
``training.config``           :class:`TrainConfig`, learning-rate scaling, ``lr_at``
``training.checkpoint``       atomic checkpoints with every random state; resume checks
``training.cli``              the command line and its tasks (``regression_task``)
``training.torch_loops``      small PyTorch models and a scheduled loop (8.7 warm-up)
``training.ranking``          the search-ranking case study: click data, DCN, NDCG@10
``training.fraud``            the opening's fraud story: transactions, ROC AUC
``training.idx``              MNIST-format (IDX) files that load offline (exercise D2)
============================  =====================================================
"""
