"""The one place the chapter chooses where PyTorch runs.

Every PyTorch cell in the book uses :data:`DEVICE`: the first CUDA GPU when one is
present, otherwise the CPU.  Set the environment variable ``OPTBOOK_DEVICE`` (e.g. to
``cpu``) to override it.
"""

from __future__ import annotations

import os


def pick_device(prefer: str | None = None):
    """``torch.device('cuda')`` when CUDA is available, else ``torch.device('cpu')``.

    ``prefer`` (or ``$OPTBOOK_DEVICE``) forces a choice; asking for CUDA on a machine
    without it is an error rather than a silent fall-back.
    """
    import torch

    choice = prefer or os.environ.get("OPTBOOK_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was requested but CUDA is not available here")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe(device) -> str:
    """A one-line description for the page: which device the cell actually used."""
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if torch.cuda.is_available():
        return "cpu (CUDA present but not chosen)"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'s' if n != 1 else ''}; no CUDA device present)"
