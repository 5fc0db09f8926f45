"""Stall detection: say live which rank or host stopped making progress, and keep the evidence.

detector.py holds the rules (pure, with an injected clock), watch.py feeds them during a run
and acts on what they find, evidence.py records what a stalled process was doing, and
process_file.py is what each MPI rank writes as it starts (standard library only: a rank
imports it, so this package imports nothing on its own).
"""
