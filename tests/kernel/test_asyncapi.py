"""The AsyncAPI catalogue, as generated from the event registries, passes the official AsyncAPI parser.

``@asyncapi/parser`` (npm, pinned by ``tests/asyncapi/package-lock.json``) is installed by ``make asyncapi-parser``
into ``.local/asyncapi-parser``; ``tests/asyncapi/validate.cjs`` parses a file with it and prints its diagnostics.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from composition.catalogue import render
from juwei.registration import suite

ROOT = Path(__file__).resolve().parents[2]
PARSER = ROOT / ".local" / "asyncapi-parser"
SCRIPT = ROOT / "tests" / "asyncapi" / "validate.cjs"


def parse(document: Path) -> tuple[int, dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node (20 or later) is needed to run the AsyncAPI parser"
    assert (PARSER / "node_modules" / "@asyncapi" / "parser").is_dir(), "run `make asyncapi-parser` first"
    done = subprocess.run([node, str(SCRIPT), str(PARSER), str(document)], capture_output=True, text=True, timeout=120)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_generated_catalogue_passes_the_official_parser(tmp_path: Path) -> None:
    text = render(suite())
    document = tmp_path / "asyncapi.yaml"
    document.write_text(text)
    code, outcome = parse(document)
    troubles = [d for d in outcome["diagnostics"] if d["severity"] in ("error", "warning")]
    assert code == 0 and outcome["valid"] and not troubles, json.dumps(outcome["diagnostics"], indent=1)[:4000]
    spec = yaml.safe_load(text)
    assert outcome["summary"]["version"] == spec["asyncapi"]
    assert outcome["summary"]["channels"] == len(spec["channels"])
    assert outcome["summary"]["messages"] >= len(spec["components"]["messages"]) > 0


def test_the_parser_refuses_a_broken_catalogue(tmp_path: Path) -> None:
    spec = yaml.safe_load(render(suite()))
    channel = next(iter(spec["channels"].values()))
    channel["messages"]["broken"] = {"$ref": "#/components/messages/NoSuchMessage"}  # a reference to nothing
    del spec["info"]["title"]  # a required field
    document = tmp_path / "broken.yaml"
    document.write_text(yaml.safe_dump(spec, allow_unicode=True))
    code, outcome = parse(document)
    errors = [d for d in outcome["diagnostics"] if d["severity"] == "error"]
    assert code == 1 and not outcome["valid"] and errors, outcome
