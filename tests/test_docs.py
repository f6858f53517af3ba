"""The documentation builds without a single warning (Sphinx -W): pages, API reference and CLI reference."""

import os
import pathlib
import subprocess
import sys

DOCS = pathlib.Path(__file__).parent.parent / "docs"


def test_docs_build_without_warnings(tmp_path):
    environment = {**os.environ, "PYTHONWARNINGS": "ignore"}  # aiida's own deprecation notices are not docs warnings
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    built = {path.relative_to(tmp_path / "html").as_posix() for path in (tmp_path / "html").rglob("*.html")}
    assert {"index.html", "tutorial.html", "reference/api.html", "reference/cli.html", "benchmarks.html"} <= built
    api = (tmp_path / "html" / "reference" / "api.html").read_text()
    assert "TrainingWorkChain" in api and "subtract_baseline" in api and "PaceSelectCalculation" in api
