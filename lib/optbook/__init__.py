"""optbook: the library that grows out of Chapter 8, "Optimization".

The library is sorted by who reads it.  This top level is for **students**: what the
chapter teaches, in the order it teaches it, written to be read beside the pages.

========================  =====================================================
``optbook.notation``      the book's one notation table (symbols ↔ code names)
``optbook.minibatch``     8.1 mini-batches, the batch-size experiments, LR scaling rules
``optbook.ewa``           8.3 exponentially weighted averages
``optbook.optimizers``    8.4–8.6 SGD, momentum, RMSprop, AdaGrad, Adam, AdamW: the
                          readable step functions and the classes that run them
``optbook.schedules``     8.7 learning-rate schedules
``optbook.surfaces``      2-D loss surfaces for figures and the playground
``optbook.models``        small models with hand-written gradients (the comparison problem)
``optbook.beyond_adam``   8.11 NAdam, RAdam, Adafactor, Lion, Schedule-Free AdamW
``optbook.muon``          8.11 Muon: momentum orthogonalised by Newton–Schulz
``optbook.tuning``        8.12 the learning-rate range test, the gradient noise scale
``optbook.averaging``     8.12 weight averaging: EMA and SWA
``optbook.precision``     8.12 bfloat16 and optimizer state, fp32 master weights
``optbook.check``         the students' self-check (``python -m optbook.check``)
========================  =====================================================

The sub-packages serve the other readers:

========================  =====================================================
``optbook.fast``          the speed engine the optimizer classes delegate to: in-place
                          chunks, threads, the generated C loop (Appendix A)
``optbook.book``          the pages' machinery: figures, sliders, quoted results, the
                          device, generated data, the playground's shared code
``optbook.training``      the training pipeline (``python -m optbook.training``) and the
                          case studies: fit loop, config, checkpoints, CLI, ranking, fraud
``optbook.grade``         the instructors' exercises and grader: masters built by
                          ``python -m optbook.grade.assign``, grading by
                          ``python -m optbook.grade`` (Gradescope, Canvas)
========================  =====================================================
"""

__version__ = "0.1.0"
