"""What the tests, the perf scripts and docs/stall_screenshot.py share: real sshd hosts, an OTLP
receiver, a real Slurm, free ports, golden files, a pty reader, synthetic runs, a browser.
Not part of the installed package: pytest puts tests/ on sys.path (tests/conftest.py); a
script outside tests/ puts it there itself before `import support`."""
