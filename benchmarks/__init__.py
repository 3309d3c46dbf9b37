"""brainfm's benchmark scripts, one measurement each, with their figures in docs/.

Run a script as ``python benchmarks/<name>.py``; tests and other scripts import it as
``benchmarks.<name>``. What several scripts share lives in :mod:`benchmarks.common`.
"""
