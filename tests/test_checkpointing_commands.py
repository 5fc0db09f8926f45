"""`checkpointing datasize` (checkpoint sizes, disk space and the client memory rule, checked
against numbers computed by hand) and `checkpointing configview` (what a run gives DLIO)."""

import json
import subprocess
import sys

import pytest
import yaml

from support.otlp_sink import base_env

GIB = 2**30


def mlpstorage(*args):
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args], capture_output=True, text=True,
                          env=base_env(), timeout=60, stdin=subprocess.DEVNULL)


def results(*args) -> list[dict]:
    """The RESULT events of `checkpointing datasize ARGS`, from its JSON lines, each with its
    extra fields apart."""
    result = mlpstorage("checkpointing", "datasize", *args, "--render", "jsonl")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    common = ("schema", "type", "timestamp", "level", "message", "trace_id", "span_id")
    return [{"message": e["message"], "fields": {k: v for k, v in e.items() if k not in common}}
            for e in events if e["type"] == "log" and e["level"] == "result"]


# llama3-8b: 8,030,261,248 parameters x 14 bytes = 112,423,657,472 bytes per checkpoint.
# llama3-70b: 70,553,706,496 parameters x 14 bytes = 987,751,890,944 bytes.
@pytest.mark.parametrize(
    "args, shard, hosts_write, holds",
    [
        # closed division: 8 ranks, 14,052,957,184 bytes each; one host writes all 8 (104.70 GiB > 64 GiB)
        (["--model", "llama3-8b", "-cm", "64"], 14_052_957_184, 112_423_657_472, True),
        # 64 ranks of 15,433,623,296 bytes on 8 hosts: 8 ranks a host, 114.99 GiB < 512 GiB
        (["--model", "llama3-70b", "-cm", "512", "-nc", "8"], 15_433_623_296, 123_468_986_368, False),
        # 8 ranks on 3 hosts: the least loaded host runs 2 ranks, 26.18 GiB > 8 GiB
        (["--model", "llama3-8b", "-cm", "8", "-nc", "3"], 14_052_957_184, 28_105_914_368, True),
    ],
)
def test_datasize_matches_hand_computed_sizes(args, shard, hosts_write, holds):
    size, disk, rule, hint = results(*args)
    processes = {"llama3-8b": 8, "llama3-70b": 64}[args[1]]
    assert size["fields"] == {"bytes": shard * processes, "bytes_per_rank": shard, "processes": processes}
    assert size["message"] == (f"Checkpoint size: {shard / GIB:.2f} GiB per rank, "
                               f"{shard * processes / GIB:.2f} GiB for {processes} ranks")
    assert disk["fields"] == {"bytes": shard * processes * 10}
    assert disk["message"] == f"Disk space needed: {shard * processes * 10 / GIB:.2f} GiB for 10 checkpoints"
    assert rule["fields"] == {"bytes_per_host": hosts_write, "memory_rule_met": holds}
    assert rule["message"].startswith("Client memory rule holds" if holds else "Client memory rule does not hold")
    assert f"{hosts_write / GIB:.2f} GiB of every checkpoint" in rule["message"]
    assert not hint["fields"] and hint["message"] == (f"Next: mlpstorage checkpointing run --model {args[1]} --num-processes {processes} "
                               "--num-checkpoints 10 --checkpoint-folder checkpoints")


def test_datasize_follows_processes_and_checkpoints():
    size, disk, rule, hint = results("--model", "llama3-8b", "-cm", "64", "-np", "2", "--num-checkpoints", "3",
                                     "--checkpoint-folder", "/mnt/my ckpt")
    assert size["fields"]["bytes_per_rank"] == 112_423_657_472 // 2
    assert disk["fields"]["bytes"] == 112_423_657_472 * 3
    assert hint["message"].endswith("--num-processes 2 --num-checkpoints 3 --checkpoint-folder '/mnt/my ckpt'")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "llama3-8b", "-cm", "64", "-np", "2", "-nc", "4"],
         "--num-client-hosts 4 is more than the 2 processes: a host would write nothing"),
        (["--model", "llama3-8b"], "the following arguments are required: --client-host-memory-in-gb/-cm"),
        (["--model", "llama3-9b", "-cm", "64"], "argument --model/-m: invalid choice: 'llama3-9b'"),
        (["--model", "llama3-8b", "-cm", "0"], "'0' must be a number greater than 0"),
    ],
)
def test_datasize_bad_input_is_one_line(args, message):
    result = mlpstorage("checkpointing", "datasize", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("mlpstorage: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def _config(stdout: str) -> dict:
    name, _, body = stdout.partition("\n")
    assert name == "# workload llama3_checkpointing"
    return yaml.safe_load(body)


def test_configview_is_the_configuration_a_run_gives_dlio(tmp_path):
    options = ["--model", "llama3-70b", "-np", "4", "--num-checkpoints", "3", "--checkpoint-folder", str(tmp_path),
               "-p", "checkpoint.type=rank_zero"]
    view = mlpstorage("checkpointing", "configview", *options)
    assert view.returncode == 0, view.stderr
    config = _config(view.stdout)
    assert config["model"] == "llama3_70b" and config["train"]["epochs"] == 3
    assert config["checkpoint"] == {**config["checkpoint"], "checkpoint_folder": str(tmp_path),
                                    "model_size": 987_751_890_944 // 4, "type": "rank_zero"}
    assert config["dataset"]["num_files_train"] == 4

    what_if = mlpstorage("checkpointing", "run", *options, "--what-if")
    assert what_if.returncode == 0, what_if.stderr
    run_config = yaml.safe_load(what_if.stdout.split("\n", 3)[3])
    for each in (config, run_config):  # named after the run's planned directory, a timestamp
        assert each["dataset"].pop("data_folder").endswith("/driver-data")
    assert config == run_config


def test_configview_checks_params_as_run_does():
    bad = mlpstorage("checkpointing", "configview", "--model", "llama3-8b", "-p", "checkpoint.model_sise=1")
    assert bad.returncode == 2
    assert bad.stderr == ("mlpstorage: error: --params checkpoint.model_sise: DLIO 2.0.0 reads no such key "
                          "(did you mean checkpoint.model_size?)\n")
    allowed = mlpstorage("checkpointing", "configview", "--model", "llama3-8b", "-p", "checkpoint.model_sise=1",
                         "--allow-invalid-params")
    assert allowed.returncode == 0 and allowed.stderr.startswith("mlpstorage: warning: --params checkpoint.model_sise")
    assert _config(allowed.stdout)["checkpoint"]["model_sise"] == 1
