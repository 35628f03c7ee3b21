"""Contention generator: CPU, memory-bandwidth and GPU load at asked levels.

The latency profiler measures branches under contention like this::

    from approxrt.contention import ContentionLevels
    from approxrt.profiler.contention import ContentionGenerator

    with ContentionGenerator(settle_s=2.0, backend="builtin") as generator:
        generator.set(ContentionLevels(cpu=1.5, membw_mbps=2000))
        ...  # measure something under this contention
        print(generator.measured())  # the levels really reached
"""

from approxrt.profiler.contention.generator import BACKENDS, ContentionGenerator
from approxrt.profiler.contention.processes import ContentionError
from approxrt.profiler.contention.reading import ContentionReading
from approxrt.profiler.contention.trace import ContentionTrace, TraceStep, load_trace

__all__ = [
    "BACKENDS",
    "ContentionError",
    "ContentionGenerator",
    "ContentionReading",
    "ContentionTrace",
    "TraceStep",
    "load_trace",
]
