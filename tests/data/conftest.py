"""Fixtures of the data tests."""

from __future__ import annotations

import pytest

from clbench.data.dataset import InMemoryDataset
from tests.helpers import make_image_dataset


@pytest.fixture
def image_dataset() -> InMemoryDataset:
    """4 classes of 4x4 uint8 images whose pixels encode (class, sample), fresh for each test."""
    return make_image_dataset()
