"""Images/s of the fused FID Inception forward (batch 16, 2 threads): run it under different allocators.

One process measures one allocator (``LD_PRELOAD`` decides which); alternate them on a quiet machine::

    for pre in "" /lib/x86_64-linux-gnu/libtcmalloc.so.4 /lib/x86_64-linux-gnu/libjemalloc.so.2; do
      LD_PRELOAD=$pre ROUNDS=6 .venv/bin/python benchmarks/allocator_forward.py; done

Needs the FID Inception weights (``ganbench weights fetch inception``). Results: benchmarks/RESULTS.md.
"""

import os
import time

import torch

from ganbench.features.inception import load_inception

BATCH = 16


def main() -> None:
    torch.set_num_threads(2)
    network = load_inception()._cpu_inference_network()
    images = torch.randn(BATCH, 3, 299, 299).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        network(images)  # untimed: first allocations, oneDNN primitive creation
        for _ in range(int(os.environ.get("ROUNDS", "4"))):
            start = time.perf_counter()
            network(images)
            times.append(time.perf_counter() - start)
    times.sort()
    allocator = os.environ.get("LD_PRELOAD") or "glibc"
    print(f"{allocator}: median {BATCH / times[len(times) // 2]:.2f} images/s, best {BATCH / times[0]:.2f}")


if __name__ == "__main__":
    main()
