"""The structure a newcomer can read, checked: the layers of .importlinter (a layer imports
only those below it, no two modules import each other, the product imports no test tool),
and no module over 500 lines unless its docstring says it is one job."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parent.parent
MAX_LINES = 500


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--config", str(REPO / ".importlinter"), "--no-cache"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "4 kept, 0 broken" in result.stdout


def test_no_module_is_over_500_lines_unless_it_is_one_job():
    long = []
    for root in ("mlpstorage", "renderers"):
        for path in (REPO / root).rglob("*.py"):
            text = path.read_text()
            if text.count("\n") > MAX_LINES and "One job:" not in (ast.get_docstring(ast.parse(text)) or ""):
                long.append(f"{path.relative_to(REPO)}: {text.count(chr(10))} lines")
    assert long == []
