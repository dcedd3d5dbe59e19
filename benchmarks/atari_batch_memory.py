"""The memory of an Atari rollout batch: pipelines/ppo_atari_breakout.yaml's 8 envs x 128 steps
collected by its collector, measured as the batch's bytes per key (uint8 frames stay uint8) and
the process's peak RSS before and after collecting it (``ru_maxrss``), beside what the same batch
would hold with float32 frames.

    pip install -c constraints.txt -e ".[atari]"
    python benchmarks/atari_batch_memory.py
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    import torch

    from pgtorchrl.pipeline.build import build_pipeline
    from pgtorchrl.pipeline.parse import load_spec

    spec = load_spec(ROOT / "pipelines" / "ppo_atari_breakout.yaml", sys.argv[1:])
    torch.set_num_threads(1)
    p = build_pipeline(spec)
    collector = p.make_collector()
    built = peak_mb()
    batch = next(iter(collector))
    collected = peak_mb()
    p.advantage(batch)
    with_advantage = peak_mb()
    collector.shutdown()
    sizes = {
        ".".join(k) if isinstance(k, tuple) else k: v.numel() * v.element_size()
        for k, v in batch.items(True, True)
        if isinstance(v, torch.Tensor)
    }
    total = sum(sizes.values())
    frames = {k: v for k, v in sizes.items() if k.endswith("observation")}
    as_float = total + 3 * sum(frames.values())  # float32 frames: 4 bytes a pixel instead of 1
    print(f"batch {tuple(batch.shape)} = {batch.numel()} frames of {spec.env.env_id}")
    for key, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:6]:
        dtype = batch.get(tuple(key.split(".")) if "." in key else key).dtype
        print(f"  {key:<28} {dtype}  {size / 2**20:8.1f} MiB")
    print(f"batch tensors: {total / 2**20:.1f} MiB (with float32 frames: {as_float / 2**20:.1f} MiB)")
    print(
        f"peak RSS: {built:.0f} MB with the pipeline built, {collected:.0f} MB after collecting the batch, "
        f"{with_advantage:.0f} MB after its advantage"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
