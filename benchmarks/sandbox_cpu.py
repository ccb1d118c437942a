"""Does a submission with many busy processes slow the kernel graded next to it?

    .venv/bin/python benchmarks/sandbox_cpu.py [--seconds 5] [--hostile 16] [--rounds 2] [--out FILE.json]

Two sandboxes side by side, as ``--jobs 2`` runs them: an honest one, one process that
counts the rounds of a busy loop for ``--seconds`` of wall-clock time, and a hostile one
that starts ``--hostile`` busy processes, each of which first tries to start a session of
its own (``os.setsid()``).  Reported: the honest count next to the hostile sandbox over
the honest count alone, in each of two set-ups, alternately for ``--rounds`` rounds:

* ``grader``: the sandbox's seccomp filter as the grader loads it (``setsid`` refused,
  so the hostile processes stay in the sandbox's one session, one scheduler autogroup);
* ``without setsid rule``: the same filter less that one rule (each hostile process
  then has an autogroup of its own, which Linux weighs like a whole sandbox).

Where the kernel has autogroups (``/proc/sys/kernel/sched_autogroup_enabled`` 1, and the
processes are in the root CPU cgroup), the scheduler shares the CPU equally between
groups: with the rule, the honest kernel keeps about the share of one process on a
free core; without it, about 1/(1 + hostile) of the machine's cores' time next to the
hostile ones.  Elsewhere the rule changes nothing and both ratios are alike.  On a
machine shared with other work every ratio is noisy: compare the two set-ups of one
run.  Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

from optbook.grade import sandbox
from optbook.grade.run import Limits

HONEST = """\
import json, time
end, rounds = time.monotonic() + {seconds}, 0
while time.monotonic() < end:
    for _ in range(10_000):
        pass
    rounds += 1
print(json.dumps({{"rounds": rounds, "cpu": time.process_time()}}))
"""
HOSTILE = """\
import os, time
end = time.monotonic() + {seconds}
for _ in range({count}):
    if os.fork() == 0:
        try:
            os.setsid()  # an autogroup of its own, where allowed
        except OSError:
            pass
        while time.monotonic() < end:
            pass
        os._exit(0)
time.sleep(max(0.0, end - time.monotonic()))
"""


def configs() -> dict[str, sandbox.SandboxConfig]:
    limits = Limits()
    grader = sandbox.plan(rlimits=limits.rlimits(), scratch_mb=limits.scratch_mb)
    rules = tuple(rule for rule in sandbox.SECCOMP_RULES if rule[0] != "setsid")
    assert len(rules) == len(sandbox.SECCOMP_RULES) - 1
    loose = dataclasses.replace(grader, seccomp=base64.b64encode(sandbox.seccomp_program(rules)).decode("ascii"))
    return {"grader": grader, "without setsid rule": loose}


def honest(config: sandbox.SandboxConfig, seconds: float) -> dict:
    out = sandbox.run_code(config, HONEST.format(seconds=seconds), timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"the honest sandbox failed: {out.stderr[-500:]}")
    return json.loads(out.stdout)


def side_by_side(config: sandbox.SandboxConfig, seconds: float, count: int) -> dict:
    """The honest count while the hostile sandbox's processes spin (started 1 s before)."""
    code = HOSTILE.format(seconds=seconds + 2.0, count=count)
    thread = threading.Thread(target=sandbox.run_code, args=(config, code), kwargs={"timeout": seconds + 60})
    thread.start()
    time.sleep(1.0)
    try:
        return honest(config, seconds)
    finally:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--hostile", type=int, default=16, help="busy processes of the hostile sandbox")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not 1 <= args.hostile < Limits().processes:
        parser.error(f"--hostile must be between 1 and {Limits().processes - 1} (the sandbox's process limit)")
    try:
        autogroups = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        autogroups = False
    setups = configs()
    alone, ratios = [], {name: [] for name in setups}
    for _ in range(args.rounds):
        alone.append(honest(setups["grader"], args.seconds)["rounds"])
        for name, config in setups.items():
            ratios[name].append(side_by_side(config, args.seconds, args.hostile)["rounds"] / alone[-1])
    print(f"CPU cores: {os.cpu_count()}; scheduler autogroups: {'on' if autogroups else 'off'}; "
          f"user id {os.geteuid()}{' (root)' if os.geteuid() == 0 else ''}")
    print(f"honest kernel alone: {statistics.median(alone):,.0f} loop rounds in {args.seconds:g} s (median)")
    print(f"next to {args.hostile} busy processes, over alone (median of {args.rounds}; each round):")
    for name, values in ratios.items():
        print(f"  {name:<20} {statistics.median(values):.2f}   ({', '.join(f'{v:.2f}' for v in values)})")
    if args.out:
        args.out.write_text(json.dumps({
            "machine": platform.platform(), "cpus": os.cpu_count(), "autogroups": autogroups,
            "root": os.geteuid() == 0, "seconds": args.seconds, "hostile": args.hostile, "alone": alone,
            "ratios": ratios}, indent=1) + "\n")


if __name__ == "__main__":
    main()
