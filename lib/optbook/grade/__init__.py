"""The instructors' grader: ``python -m optbook.grade SUBMISSIONS/ --out gradebook.csv``.

One module per stage of the pipeline (:mod:`~optbook.grade.pipeline` runs them in order):

========================  =============================================================
``exercise``              an exercise: the pristine notebook and its checks file
``checks``                how checks are written (``solutions/hidden/<id>.py``): a probe
                          run in the kernel, a judge run in the grader
``find``                  find the submissions, read their answer cells
``merge``                 answers into the pristine notebook, probe cells after it
``sandbox``               bubblewrap around the kernel (and the kernel's launcher)
``run``                   nbval on one notebook in a child process, with limits
``plugin``                the pytest plugin in nbval's process: sandboxed kernel, reports
``probe``                 the kernel's side: send a probe's value back (untrusted)
``judge``                 every check's verdict, reached in the grader; status, messages
``report``                gradebook, feedback, prose answers, cache (atomic writes)
``pipeline``              the whole run; ``cli``: the command line
``gradescope``            Gradescope's results.json and autograder zip (``--gradescope``)
``canvas``                the Canvas gradebook to import (``--canvas``)
``master``, ``assign``    an exercise's master (``solutions/masters/<id>.md``) and the
                          builder, ``python -m optbook.grade.assign``: the released
                          notebook, the reference solution and the checks file
========================  =============================================================

The guarantees (what student code cannot do, and how each is tested) are in the README's
instructors' section and in ``tests/test_grade.py``.
"""
