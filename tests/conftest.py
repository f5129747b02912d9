"""Shared pytest configuration.

The network is blocked for the pytest process (pytest-socket, ``--allow-hosts`` in
pyproject.toml: only loopback, which nbval needs to talk to its kernels). Kernels are
separate processes it cannot reach; CI additionally runs the suite inside a network
namespace with only loopback (see scripts/run_tests.sh).
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """``scripts/<name>.py`` imported as the module ``name`` (once; later calls return it).

    Registered in ``sys.modules`` before it runs: dataclasses look their module up there.
    """
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def pytest_configure(config):
    config.addinivalue_line("markers", "book: builds the Jupyter Book (slow)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    # One BLAS/OpenMP thread per test process (xdist already runs two processes on two cores),
    # also under a plain `pytest`: the thread pins of mmedu.reproduce, where the caller left
    # them unset. scripts/run_tests.sh sets all pins anyway (python -m mmedu.reproduce).
    from mmedu.reproduce import pin_threads

    pin_threads()


@pytest.fixture
def rng():
    import torch

    return torch.Generator().manual_seed(0)
