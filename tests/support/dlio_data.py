"""A small unet3d data set made once by a real `mlpstorage training datagen` (2 ranks), for the
perf scripts that run DLIO; reused while the folder holds enough files."""

from __future__ import annotations

import subprocess
from pathlib import Path

MODEL = "unet3d"
RANKS = 2
# 1 MiB files, as the quickstart's (the checkpoint's model size too: DLIO 2.0.0 allocates it at start)
TINY = ["dataset.record_length=1048576", "dataset.record_length_stdev=0", "dataset.record_length_resize=1048576",
        "checkpoint.model_size=1048576"]


def ensure_dataset(launch: list[str], data_dir: Path, files: int, work: Path, env: dict[str, str]) -> str:
    """data_dir holding at least `files` training files, generated with `launch` (the
    launcher's argv prefix) when it does not; what was done, in a few words."""
    train = data_dir / "train"
    if train.is_dir() and len(list(train.glob("*.npz"))) >= files and (data_dir / "valid").is_dir():
        return f"reused {data_dir}"
    argv = [*launch, "training", "datagen", "--model", MODEL, "--data-dir", str(data_dir), "--num-processes",
            str(RANKS), "--results-dir", str(work / "datagen"), "--render", "plain", "--skip-timeseries",
            "--params", f"dataset.num_files_train={files}", *TINY]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=work)
    if done.returncode != 0:
        raise SystemExit(f"datagen failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return f"generated {len(list(train.glob('*.npz')))} files in {data_dir}"
