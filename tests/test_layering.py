"""The layering rule of docs/architecture.md, enforced with import-linter (contracts in pyproject.toml)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(config: Path) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filenames=(sys.argv[1],), no_cache=True))"
    return subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_import_contracts_are_kept():
    result = lint_imports(ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 7 kept, 0 broken." in result.stdout


def test_a_back_arrow_breaks_a_contract(tmp_path):
    """The check can fail: a lower layer that imports a task is reported."""
    package = tmp_path / "mms"
    (package / "asr").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "asr" / "__init__.py").write_text("")
    (package / "audio.py").write_text("import mms.asr\n")
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_package = "mms"\n\n[[tool.importlinter.contracts]]\n'
                      'name = "audio is below the tasks"\ntype = "forbidden"\nsource_modules = ["mms.audio"]\n'
                      'forbidden_modules = ["mms.asr"]\n')
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filenames=(sys.argv[1],), no_cache=True))")
    result = subprocess.run([sys.executable, "-c", code, str(config), str(tmp_path)], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode != 0 and "mms.audio -> mms.asr" in result.stdout
