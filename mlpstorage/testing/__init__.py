"""Helpers for the tests and the perf scripts (real sshd hosts, an OTLP receiver, a pty reader); not imported by mlpstorage itself."""
