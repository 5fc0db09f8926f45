"""Reports over runs: one run model (record.py: RunRecord, read_run) read from a run folder
(ours or the existing launcher's layout) or a recording alone; the verdict of a run (CLOSED,
OPEN or INVALID, with reasons); the run's page, `reports show`, `reports compare` and
`mlpstorage reports reportgen` over a results tree, all reading runs through it.

What callers use:
    read_run(path, results_dir=None, recording=True) -> RunRecord
    verdict_of_run(run_dir) -> Verdict                  # .category, .reasons (strings)
    judge(record) -> Verdict
    record.headline() -> list[str]                      # the headline metrics, formatted (headline.py)
    record.throughput_series, record.throughput_unit    # per epoch or per checkpoint
    record.write_run_record(run_dir, benchmark, metadata) -> Path   # the one writer of a run record
    page.write_run_page(run_dir) -> Path                # report.html, once the run is over
read_run and verdict_of_run raise NotARun (a UsageError: one line, exit code 2 at the CLI) for
a path that holds no run.
"""

from .record import LAUNCHER, OURS, NotARun, RunRecord, read_run
from .verdict import CLOSED, INVALID, OPEN, Verdict, judge, verdict_of_run

__all__ = ["CLOSED", "INVALID", "LAUNCHER", "OPEN", "OURS", "NotARun", "RunRecord", "Verdict", "judge", "read_run",
           "verdict_of_run"]
