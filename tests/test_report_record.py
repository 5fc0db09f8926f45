"""The one run model of the reports (mlpstorage/reports/record.py): written by one writer,
read back by one reader; and the reports' modules in layers (no two import each other, none
imports the CLI, the benchmarks or the renderers)."""

from __future__ import annotations

import ast
import graphlib
import json
from pathlib import Path

import pytest

from mlpstorage.reports import NotARun, read_run
from mlpstorage.reports.headline import headlines, short_texts
from mlpstorage.reports.record import write_run_record

REPORTS = Path(__file__).parent.parent / "mlpstorage" / "reports"
SECRET = "s3cr3t-P"


def test_a_run_record_is_written_redacted_and_read_back(tmp_path):
    run_dir = tmp_path / "training" / "unet3d" / "run" / "20261127_101000"
    run_dir.mkdir(parents=True)
    metadata = {"benchmark": "training", "model": "unet3d", "command": "run", "run_id": "training-unet3d-run-x",
                "status": "ok", "arguments": {"processes": 2, "params": {"storage.secret_key": SECRET}},
                "resolved_parameters": {"storage": {"secret_key": SECRET}, "metric": {"au": 0.9}},
                "metrics": {"train_au_mean_percentage": 91.234}}
    path = write_run_record(run_dir, "training", metadata)
    assert path == run_dir / "training_20261127_101000_metadata.json"
    assert SECRET not in path.read_text() and json.loads(path.read_text())["run_id"] == "training-unet3d-run-x"
    record = read_run(run_dir, tmp_path, recording=False)
    assert (record.run_id, record.benchmark, record.status) == ("training/unet3d/run/20261127_101000", "training", "ok")
    assert record.params == {"storage.secret_key": "***"} and record.headline() == ["AU 91.23 %"]
    assert record.au_target() == pytest.approx(90.0)


def test_a_datasize_record_is_no_run_to_judge(tmp_path):
    write_run_record(tmp_path, "training", {"benchmark": "training", "model": "unet3d", "command": "datasize",
                                            "run_id": "r", "arguments": {}, "results": {"files": 3}})
    with pytest.raises(NotARun, match="a datasize record, not a run"):
        read_run(tmp_path, recording=False)


def test_each_figure_has_one_format_wherever_it_is_shown():
    metrics = {"train_au_mean_percentage": 97.0, "train_throughput_mean_samples_per_second": 11000.0,
               "train_io_mean_MB_per_second": 1202.83, "save_checkpoint_io_mean_GB_per_second": 4.2,
               "train_au_meet_expectation": "success"}
    page = {item.key: item.text for item in headlines(metrics)}
    assert page == {"train_au_mean_percentage": "97.00 %", "train_throughput_mean_samples_per_second":
                    "11,000.00 samples/s", "train_io_mean_MB_per_second": "1,202.83 MB/s",
                    "save_checkpoint_io_mean_GB_per_second": "4.200 GB/s"}
    assert short_texts(metrics) == ["AU 97.00 %", "11,000.00 samples/s", "1,202.83 MB/s", "write 4.200 GB/s"]


# ----- layers ------------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    """Every module path imports, at the top or inside a function, as a dotted name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "mlpstorage.reports" if node.level == 1 else "mlpstorage" if node.level == 2 else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # from . import timeline
    return found


def test_no_two_report_modules_import_each_other_and_none_imports_a_layer_above():
    modules = {f"mlpstorage.reports.{p.stem}": _imports(p) for p in REPORTS.glob("*.py") if p.stem != "__init__"}
    inside = {name: {m for m in imports if m in modules and m != name} for name, imports in modules.items()}
    graphlib.TopologicalSorter(inside).prepare()  # raises CycleError naming the circle, if there is one
    layers_above = (["mlpstorage", "cli"], ["mlpstorage", "benchmarks"])
    above = {name: sorted(m for m in imports if m.split(".")[:2] in layers_above or m.split(".")[0] == "renderers")
             for name, imports in modules.items()}
    assert {name: found for name, found in above.items() if found} == {}


def test_no_html_is_written_in_python():
    for path in REPORTS.glob("*.py"):
        assert not any(tag in path.read_text() for tag in ("<table", "<tr", "<td", "<section", "<li", "<html")), path
    assert len(list((REPORTS / "templates").glob("*.css"))) == 1
