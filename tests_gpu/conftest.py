"""The GPU tests need CUDA: without it they stop with one clear message (not skips)."""

import pytest
import torch


def pytest_sessionstart(session):
    if not torch.cuda.is_available():
        raise pytest.UsageError(
            "tests_gpu/ checks the CUDA paths and needs an NVIDIA GPU with a CUDA build of "
            f"torch; torch {torch.__version__} sees no CUDA device here. "
            "Run the CPU suite with `make test`.")
