#!/usr/bin/env bash
# The README's first command: set up what the benchmark needs (scripts/setup.sh, no test-only
# packages), then a small real MLPerf Storage benchmark on this host
# with the live display: DLIO generates a shrunk unet3d data set (16 files of 1 MiB) and trains
# on it for 3 epochs with 2 MPI ranks. Results land in ./results, data in ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
tiny=(--params dataset.num_files_train=16 dataset.record_length=1048576 dataset.record_length_stdev=0
      dataset.record_length_resize=1048576 checkpoint.model_size=1048576)
.venv/bin/mlpstorage training datagen --model unet3d --data-dir data/unet3d-tiny --num-processes 2 "${tiny[@]}"
.venv/bin/mlpstorage training run --model unet3d --data-dir data/unet3d-tiny --num-accelerators 2 \
  --timeseries-interval 1 "${tiny[@]}" reader.batch_size=2 reader.read_threads=1 train.epochs=3
