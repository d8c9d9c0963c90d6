"""Peak fp32 MACs/s and memory bandwidth of this machine, for its profile.

Peak compute: the best of `--repeats` float32 matrix products n x n x n
through numpy's BLAS (n**3 MACs each), on all the threads BLAS uses.
Bandwidth: the best of `--repeats` copies of a `--copy_mb` float32 buffer
(`np.copyto`, one thread), counting the bytes read plus the bytes written.
Best-of, not median: the profile wants peaks, and other load on the machine
only ever lowers a run. The numbers go into
`univision/efficiency/hardware_profiles/this_machine.yaml`.

Usage:
  .venv/bin/python benchmarks/hardware_peaks.py --repeats=10
"""
import argparse
import os
import time

import numpy as np


def peak_macs_per_s(n: int, repeats: int) -> float:
  """Best float32 matmul rate, MACs per second."""
  rng = np.random.default_rng(0)
  a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
  a @ b  # pylint: disable=pointless-statement  (warm-up)
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    a @ b  # pylint: disable=pointless-statement
    best = min(best, time.perf_counter() - start)
  return n**3 / best


def copy_bytes_per_s(megabytes: int, repeats: int) -> float:
  """Best copy rate, bytes read + written per second."""
  src = np.ones(megabytes * 2**20 // 4, np.float32)
  dst = np.empty_like(src)
  np.copyto(dst, src)  # Touches the pages of dst.
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    np.copyto(dst, src)
    best = min(best, time.perf_counter() - start)
  return 2 * src.nbytes / best


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--matmul_size', type=int, default=2048)
  parser.add_argument('--copy_mb', type=int, default=256)
  parser.add_argument('--repeats', type=int, default=10)
  args = parser.parse_args()
  macs = peak_macs_per_s(args.matmul_size, args.repeats)
  bandwidth = copy_bytes_per_s(args.copy_mb, args.repeats)
  print(f'cpus: {os.cpu_count()}')
  print(f'peak_macs_per_s: {macs:.3e}  (float32 matmul {args.matmul_size}^3)')
  print(f'bandwidth_bytes_per_s: {bandwidth:.3e}  (copy of {args.copy_mb} MB)')
  print(f'ridge point: {macs / bandwidth:.1f} MACs/byte')


if __name__ == '__main__':
  main()
