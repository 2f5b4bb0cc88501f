"""juwei-client stands on its own: a wheel of its own that needs httpx alone, and modules that import nothing of
Juwei; its connection retries what may be retried and nothing else (against a recording transport)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from juwei_client import Connection, ProblemError, Residents

from tests.kernel.harness import ROOT

PACKAGE = ROOT / "clients" / "python"
PROJECT = ("juwei", "contracts", "services", "composition", "demo", "console", "bench", "tests")


def test_the_client_imports_the_standard_library_and_httpx_alone() -> None:
    for path in sorted((PACKAGE / "juwei_client").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in ("httpx", "juwei_client", "__future__"), (
                    f"{path.name} imports {name}"
                )
    # Imported with Juwei's own packages made unimportable: nothing of them is needed.
    blocker = (
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {PROJECT!r}: raise ImportError('refused: ' + name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "import juwei_client, juwei_client.feed, juwei_client.webhooks, juwei_client.services\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd="/")
    assert done.stdout.strip() == "ok", done.stderr


def test_its_wheel_holds_the_client_alone_and_requires_httpx_alone(tmp_path: Path) -> None:
    source = tmp_path / "source"  # built from a copy: the build's own folders stay out of the checkout
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
         str(source)],
        check=True,
    )  # fmt: skip
    [wheel] = tmp_path.glob("juwei_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert all(n.startswith(("juwei_client/", "juwei_client-")) for n in names), names
    assert "juwei_client/py.typed" in names and "juwei_client/feed.py" in names
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires == ["httpx>=0.27"]
    assert "Name: juwei-client" in metadata


class Recorder:
    """A transport answering from a script, recording each request."""

    def __init__(self, *answers: httpx.Response | type[Exception]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, type):
            raise answer("scripted", request=request)
        return answer


def _busy() -> httpx.Response:
    body = {"type": "urn:juwei:problem:database-unavailable", "title": "Unavailable", "status": 503}
    return httpx.Response(503, json=body, headers={"Retry-After": "0"})


def _connection(recorder: Recorder, retries: int = 3) -> Connection:
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    return Connection("http://residents.test", "jw_k_secret", retries=retries, backoff=0, client=client)


def test_a_get_is_retried_when_the_service_is_busy_or_unreachable() -> None:
    recorder = Recorder(httpx.ConnectError, _busy(), httpx.ReadTimeout, httpx.Response(200, json={"buildings": []}))
    residents = Residents("http://residents.test", "jw_k_secret", backoff=0, client=httpx.Client(
        transport=httpx.MockTransport(recorder)))  # fmt: skip
    assert residents.buildings("c1") == []
    assert len(recorder.requests) == 4
    assert all(r.headers["X-API-Key"] == "jw_k_secret" for r in recorder.requests)
    # Past its retries, the last answer is the caller's.
    recorder = Recorder(_busy(), _busy())
    with pytest.raises(ProblemError) as busy:
        _connection(recorder, retries=1).get("/compounds/c1/buildings")
    assert (busy.value.status, busy.value.code, len(recorder.requests)) == (503, "database-unavailable", 2)


def test_a_write_is_retried_only_with_an_idempotency_key() -> None:
    recorder = Recorder(_busy())
    with pytest.raises(ProblemError):
        _connection(recorder).post("/compounds/c1/buildings", {"building": "b1"})
    assert len(recorder.requests) == 1
    recorder = Recorder(httpx.ConnectError)
    with pytest.raises(httpx.ConnectError):
        _connection(recorder).post("/compounds/c1/buildings", {"building": "b1"})
    assert len(recorder.requests) == 1
    in_progress = {"type": "urn:juwei:problem:command-in-progress", "title": "In progress", "status": 409}
    recorder = Recorder(httpx.ReadTimeout, httpx.Response(409, json=in_progress), httpx.Response(201, json={"ok": 1}))
    assert _connection(recorder).post("/compounds/c1/buildings", {"building": "b1"}, idempotency_key="k-0001-abc") == {
        "ok": 1
    }
    assert [r.headers["Idempotency-Key"] for r in recorder.requests] == ["k-0001-abc"] * 3


def test_an_answer_that_is_not_a_problem_is_made_one() -> None:
    recorder = Recorder(httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(ProblemError) as failed:
        _connection(recorder, retries=0).get("/whoami")
    assert (failed.value.type, failed.value.status, failed.value.title) == ("about:blank", 502, "Bad Gateway")
    body = {"type": "urn:juwei:problem:not-found", "title": "Not found", "status": 404, "request_id": "r-1"}
    recorder = Recorder(httpx.Response(404, json=body))
    with pytest.raises(ProblemError) as missing:
        _connection(recorder).get("/nowhere")
    assert missing.value.code == "not-found" and missing.value.problem.extensions == {"request_id": "r-1"}
