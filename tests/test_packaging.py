"""What the repository promises about itself: one version everywhere, benchmarks that say where their data is."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import piiport
from discover.index import Index
from discover.scan import scan
from piiport.api import export_subject
from piiport.config import Config, specs_from_urls

ROOT = Path(__file__).parent.parent


def test_the_version_has_one_source() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = pyproject.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^version\s*=", project, re.MULTILINE) is None and 'dynamic = ["version"]' in project
    assert 'version = { attr = "piiport.__version__" }' in pyproject
    assert version("piiport") == piiport.__version__
    cli = subprocess.run(
        [str(Path(sys.executable).with_name("piiport")), "--version"], capture_output=True, text=True, check=True
    )
    assert cli.stdout == f"piiport, version {piiport.__version__}\n"


def test_the_manifest_names_the_version(shop_db: Path, index: Index, detector, tmp_path: Path) -> None:
    scan(specs_from_urls([f"sqlite:///{shop_db}"]), index=index, detector=detector)
    result = export_subject(config=Config(), index=index, emails=["alice.martin@example.com"], out=tmp_path / "out")
    manifest = json.loads((Path(result.package) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["generator"] == {"name": "piiport", "version": piiport.__version__}


def test_the_accuracy_benchmark_says_where_to_get_its_data(tmp_path: Path) -> None:
    script = str(ROOT / "benchmarks" / "accuracy.py")
    env = {k: v for k, v in os.environ.items() if k != "PIIPORT_EVAL_DATA"}
    missing = tmp_path / "synth_dataset_v2.json"
    by_flag = subprocess.run([sys.executable, script, "--data", str(missing)], capture_output=True, text=True, env=env)
    assert by_flag.returncode == 1 and by_flag.stdout == ""
    assert by_flag.stderr == (
        f"accuracy.py: no labelled file at {missing} (--data); pass --data PATH or set PIIPORT_EVAL_DATA to "
        "presidio-research's synth_dataset_v2.json (MIT licence; https://github.com/microsoft/presidio-research, data/)\n"
    )
    by_env = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, env={**env, "PIIPORT_EVAL_DATA": str(missing)}
    )
    assert by_env.returncode == 1 and by_env.stderr.startswith(
        f"accuracy.py: no labelled file at {missing} (PIIPORT_EVAL_DATA);"
    )


def _run_pytest(tmp_path: Path, *, require: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_needs_a_server.py").write_text(
        "from services import service_missing\n\n\ndef test_x():\n    service_missing('PostgreSQL is not reachable')\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "PIIPORT_REQUIRE_SERVICES"}
    env["PYTHONPATH"] = str(ROOT / "tests")
    if require:
        env["PIIPORT_REQUIRE_SERVICES"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", "test_needs_a_server.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )


def test_a_missing_service_skips_locally_and_fails_in_ci(tmp_path: Path) -> None:
    local = _run_pytest(tmp_path, require=False)
    assert local.returncode == 0
    assert (
        ": PostgreSQL is not reachable (set PIIPORT_REQUIRE_SERVICES=1 to fail instead)\n1 skipped in" in local.stdout
    )
    ci = _run_pytest(tmp_path, require=True)
    assert ci.returncode == 1
    assert "\nPostgreSQL is not reachable (PIIPORT_REQUIRE_SERVICES=1 requires it)\n" in ci.stdout


def test_a_foreign_package_of_the_same_name_is_refused_in_one_line(tmp_path: Path) -> None:
    # PyPI has a package called discover: installed beside piiport, it would shadow piiport's own.
    foreign = tmp_path / "site" / "discover"
    foreign.mkdir(parents=True)
    (foreign / "__init__.py").write_text("def main():\n    pass\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    cli = subprocess.run(
        [str(Path(sys.executable).with_name("piiport")), "--help"], capture_output=True, text=True, env=env
    )
    assert cli.returncode == 1 and cli.stdout == ""
    assert cli.stderr.splitlines() == [
        f"Error: the package 'discover' imported from {foreign / '__init__.py'} is not piiport's own; "
        "install piiport in a virtual environment of its own (python -m venv, or pipx)"
    ]
    # A program that imports piiport gets an ImportError it can catch, naming the package and its path.
    probe = "try:\n    import piiport\nexcept ImportError as e:\n    print(e.name, e.path)\n"
    as_library = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
    )
    assert as_library.returncode == 0 and as_library.stdout == f"discover {foreign / '__init__.py'}\n"
