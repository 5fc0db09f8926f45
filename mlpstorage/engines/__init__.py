"""Engines: how a benchmark's work is started: a child process with its output passed through
(process.py), mpirun command lines (mpi.py), and DLIO under MPI (dlio.py, dlio_rank.py)."""
