"""Reports over run folders: the verdict of a run (CLOSED, OPEN or INVALID, with reasons),
`mlpstorage reports reportgen` over a results tree, and the records both read.

What page code can call:
    read_run(run_dir, results_dir=None) -> RunRecord   # ours or the existing launcher's layout
    verdict_of_run(run_dir) -> Verdict                  # .category, .reasons (strings)
    judge(record) -> Verdict
    record.headline() -> list[str]                      # the metrics reports show, formatted
    record.throughput_series, record.throughput_unit    # per epoch or per checkpoint
Both raise NotARun (an MlpStorageError: one line, exit code 2 at the CLI) for a folder that
holds no run.
"""

from .records import NotARun, RunRecord, read_run
from .verdict import CLOSED, INVALID, OPEN, Verdict, judge, verdict_of_run

__all__ = ["CLOSED", "INVALID", "OPEN", "NotARun", "RunRecord", "Verdict", "judge", "read_run", "verdict_of_run"]
