"""The board's bookkeeping for many hosts (renderers/board.py): what it keeps as samples come
(the hosts by their last sample, the gaps sorted, the hosts yet to report) answers exactly as
looking at every host does, on random streams of samples with hosts that stop, hosts whose
clock is off, hosts outside the run and samples out of order."""

from __future__ import annotations

import io
import random

import pytest

from mlpstorage.emitter.events import iso_from_ns
from renderers.board import RATES, Board
from renderers.plain import PlainRenderer

T0 = 1_790_000_000_000_000_000


def run_started(hosts: list[str]) -> dict:
    return {"schema": 4, "type": "run.started", "timestamp": iso_from_ns(T0), "level": "info", "span_id": "r",
            "name": "run", "start_unix_nano": T0, "attributes": {"mlpstorage.hosts": [f"{h}:8" for h in hosts]}}


def sample(host: str, at_ns: int, rng: random.Random) -> dict:
    values = {rate: rng.choice([0.0, 1e6, 2e6, rng.uniform(0, 1e9)]) for rate in RATES}
    return {"schema": 4, "type": "sample", "timestamp": iso_from_ns(at_ns), "level": "info", "host": host,
            "values": values, "stage_index": 3, "stage_count": 4}


def random_stream(seed: int) -> list[dict]:
    """A run of 20 hosts over 12 intervals: some stop for good or for a while, one runs 60 s
    ahead, two never report, two hosts outside the run report, arrivals are shuffled and some
    host reports twice in an interval."""
    rng = random.Random(seed)
    hosts = [f"node{i:02d}" for i in range(20)]
    stops = {h: rng.choice([99, 99, 99, rng.randrange(1, 12)]) for h in hosts}
    pauses = {h: range(rng.randrange(2, 6), rng.randrange(6, 9)) if rng.random() < 0.2 else range(0) for h in hosts}
    ahead = {hosts[3]: 60_000_000_000}
    never = set(hosts[-2:])
    events = [run_started(hosts)]
    for tick in range(12):
        arrivals = [h for h in hosts if h not in never and tick < stops[h] and tick not in pauses[h]]
        arrivals += ["stranger-a", "stranger-b"][: tick % 3]
        arrivals += rng.sample(arrivals, k=min(2, len(arrivals)))  # a host twice in an interval
        rng.shuffle(arrivals)
        for host in arrivals:
            at = T0 + tick * 10_000_000_000 + rng.randrange(0, 900_000_000) + ahead.get(host, 0)
            events.append(sample(host, at, rng))
    return events


def silent_by_looking(board: Board) -> set[str]:
    return {h.name for h in board.host_states() if h.silent_s is not None}


@pytest.mark.parametrize("seed", range(40))
def test_what_the_board_keeps_answers_as_looking_at_every_host_does(seed):
    board = Board()
    for event in random_stream(seed):
        board.apply(event)
        states = board.host_states()
        assert set(board.silent_hosts()) == silent_by_looking(board)
        assert len(board.silent_hosts()) == len(silent_by_looking(board))  # each host once
        assert board.host_count == len(states)
        aggregate = board.aggregate()
        if aggregate is None:  # before the first sample
            continue
        ranked = sorted((h for h in aggregate.hosts if h.values is not None and h.silent_s is None and h.has_rates),
                        key=lambda h: h.values.get(f"{aggregate.direction}_Bps", 0))
        if len(ranked) < 2 or not aggregate.rates[f"{aggregate.direction}_Bps"]:
            ranked = []
        assert [h.name for h in aggregate.slowest] == [h.name for h in ranked[:3]]


class PlainLookingAtEveryHost(PlainRenderer):
    """The interval's end as it was decided before: every host looked at, for each sample."""

    def _round_complete(self) -> bool:
        return all(h.name in self._round or h.silent_s is not None for h in self._board.host_states())


@pytest.mark.parametrize("seed", range(40))
def test_plain_ends_each_interval_where_looking_at_every_host_does(seed):
    outputs = []
    for renderer_type in (PlainRenderer, PlainLookingAtEveryHost):
        stream = io.StringIO()
        renderer = renderer_type(stream, heartbeat_s=0, min_level="info")
        for event in random_stream(seed):
            renderer.handle(event)
        renderer.close()
        outputs.append(stream.getvalue())
    assert outputs[0] == outputs[1]
    assert outputs[0].count("all hosts: ") >= 10
