"""Collectors: what the hosts are (host info) and what they do during a run (time series)."""
