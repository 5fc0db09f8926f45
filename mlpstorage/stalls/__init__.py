"""Stall detection: say live which rank or host stopped making progress, and keep the evidence.

detector.py holds the rules (pure, with an injected clock), watch.py feeds them during a run
and acts on what they find, evidence.py records what a stalled process was doing. What each
MPI rank writes as it starts (its host and pid) is a file format shared with the rank, so it
lives beside the event schema: mlpstorage/emitter/rank_process.py.
"""
