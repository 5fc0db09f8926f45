"""Reports of runs: a page per run, the terminal view, comparisons."""
