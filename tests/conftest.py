import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes-long runs, only with DDW_SLOW_TESTS=1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("DDW_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow; set DDW_SLOW_TESTS=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
