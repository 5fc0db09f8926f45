"""Engines: how a benchmark's workload is started (a child process, later DLIO under MPI)."""
