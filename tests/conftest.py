import os
from pathlib import Path

import pytest
import torch

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def real_dir() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real footage not found at {REAL}")
    return REAL


def pytest_configure(config):
    os.environ.setdefault("TQDM_DISABLE", "1")
