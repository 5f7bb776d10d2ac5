import pytest

from benchbench_plugins.metrics import memo


@pytest.fixture(autouse=True)
def no_memoised_statistics():
    """Each test computes the sample statistics it checks (none reused from an earlier test)."""
    memo.clear()
    yield
    memo.clear()
