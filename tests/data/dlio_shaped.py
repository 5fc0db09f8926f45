"""A program that prints DLIO-shaped epoch and step lines, for `mlpstorage exec` tests.

    dlio_shaped.py EPOCHS STEPS STEP_S [--ranks N] [--uneven F] [--rank-quits-at EPOCH:STEP]

--uneven F: every second epoch's steps take F times longer (epochs differ by F - 1).
--rank-quits-at E:S: rank 1 prints no step after step S of epoch E (the others go on).
"""

import argparse
import datetime
import sys
import time


def line(text: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    print(f"[INFO] {stamp} {text} [dlio_shaped.py:1]", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("epochs", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("step_s", type=float)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--uneven", type=float, default=1.0)
    parser.add_argument("--rank-quits-at", default=None)
    args = parser.parse_args()
    quit_epoch, quit_step = map(int, args.rank_quits_at.split(":")) if args.rank_quits_at else (None, None)
    quiet = False
    for epoch in range(1, args.epochs + 1):
        line(f"Starting epoch {epoch}: {args.steps} steps expected")
        started = time.monotonic()
        for step in range(1, args.steps + 1):
            time.sleep(args.step_s * (args.uneven if epoch % 2 == 0 else 1.0))
            for rank in range(args.ranks):
                if rank == 1 and quiet:
                    continue
                line(f"Rank {rank} step {step} processed 2 samples in {args.step_s} s")
            quiet = quiet or (epoch, step) == (quit_epoch, quit_step)
        line(f"Ending epoch {epoch} - {args.steps} steps completed in {time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    main()
