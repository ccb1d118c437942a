"""optbook.fast: the speed engine behind the optimizer classes (Appendix A, "How fast can
an optimizer step be?").

For readers of Appendix A and for whoever works on speed; a student reading Adam never
needs to open it.  :meth:`optbook.optimizers.Optimizer.update` hands every step to
:func:`optbook.fast.engine.update`, which performs the readable step functions'
operations in the same order, in place and without temporaries, so the results are
bitwise the same.

========================  =====================================================
``fast.engine``           the fast path of every update: cache-sized chunks, the thread
                          pool and scratch buffers, the compiled-loop switch
                          (``set_compiled``, ``compiled_status``, ``get_num_threads``,
                          ``set_num_threads``)
``fast.kernels``          the step functions rewritten with ``out=`` (``adam_kernel``, ...)
``fast.onepass``          a kernel traced into one generated C loop per step
========================  =====================================================
"""
