"""Guards on how notebooks are committed.

nbval silently skips a code cell that has no execution count, and per-cell timing
metadata is diff noise; both mean a notebook was not stored as one clean run of
``make notebooks``. Each notebook must also be listed in the book's table of contents.
"""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_as_one_clean_run(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts}; run `make notebooks`"
    timed = [i for i, c in enumerate(code) if "execution" in c.get("metadata", {})]
    assert not timed, f"{path.name}: code cells {timed} carry timing metadata"
    errors = [o.get("ename") for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored outputs contain errors {errors}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_listed_in_the_book(path):
    toc = (ROOT / "_toc.yml").read_text()
    assert f"notebooks/{path.stem}" in toc, f"{path.name} is not in _toc.yml"


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")
def test_network_is_blocked_during_tests():
    import socket

    from pytest_socket import SocketBlockedError, SocketConnectBlockedError

    # A literal address (TEST-NET-3, RFC 5737): no name lookup, so the only thing that can
    # stop the connection before it is attempted is pytest-socket's block (an offline machine
    # would otherwise pass this test with a timeout or a routing error).
    with pytest.raises((SocketBlockedError, SocketConnectBlockedError)):
        socket.create_connection(("203.0.113.1", 443), timeout=5)
    # loopback stays allowed (nbval talks to its kernels over it)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    socket.create_connection(server.getsockname(), timeout=5).close()
    server.close()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_cell_displays_a_value_that_depends_on_the_cpu(path):
    # agree() returns the measured difference and claims.* return a flag; as a cell's last
    # line, either is displayed. nbval runs cells with store_history=False, where a trailing
    # ";" does not hide it, and the difference's digits depend on the CPU: assign it instead.
    import ast

    nb = json.loads(path.read_text())
    bad = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            body = ast.parse("\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!")))).body
        except SyntaxError:
            continue
        if body and isinstance(body[-1], ast.Expr) and isinstance(body[-1].value, ast.Call):
            func = body[-1].value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
            if name == "agree" or owner == "claims":
                bad.append(i)
    assert not bad, f"{path.name}: cells {bad} end with a bare agree(...)/claims.*(...) call; end them with `_ = ...`"
