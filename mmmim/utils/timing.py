"""Timing a training step for the benchmark scripts."""
import resource
import time
from typing import Callable, Tuple

import torch


def time_steps(step: Callable[[], object], warmup: int, iters: int,
               cuda: bool) -> Tuple[float, str]:
    """Seconds per ``step()`` over ``iters`` calls after ``warmup`` calls, and the peak memory.

    The memory is CUDA's peak allocation during the timed calls, or on the
    CPU the process's maximum resident set size.
    """
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / iters
    if cuda:
        return seconds, f'{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (CUDA peak)'
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return seconds, f'{rss:.2f} GiB (process max RSS)'
