import pytest
import torch

from optbook.book.device import describe, pick_device


def test_default_follows_cuda_availability(monkeypatch):
    monkeypatch.delenv("OPTBOOK_DEVICE", raising=False)
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_override_and_description(monkeypatch):
    monkeypatch.setenv("OPTBOOK_DEVICE", "cpu")
    device = pick_device()
    assert device.type == "cpu"
    assert describe(device).startswith("cpu")


def test_asking_for_cuda():
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
    else:  # asking for a GPU that is not there is an error, not a silent CPU run
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda")
