"""The run model's former import path, kept only while tests/test_verdict.py and
mlpstorage/benchmarks/dlio.py still import from it: the one run model is record.py.
Delete this file once they import from mlpstorage.reports.record (or mlpstorage.reports)."""

from .record import LAUNCHER, OURS, NotARun, RunRecord, read_run, record_of_ours

__all__ = ["LAUNCHER", "OURS", "NotARun", "RunRecord", "read_run", "record_of_ours"]
