"""Benchmark: ganbench's Fréchet distance vs the pytorch-fid way (``scipy.linalg.sqrtm`` of the product).

Both run side by side on the same realistic covariances: post-ReLU features of correlated Gaussians,
``dim``-d, from ``--n-full`` samples (full rank; then again with 2% dead units, i.e. zero-variance
dimensions) and from ``--n-singular`` samples (``n < dim``, singular, dead units too). The singular case
also has an exact reference: with centred data matrices ``A``, ``B``, ``tr sqrt(S1 S2)`` is the sum of
singular values of the small matrix ``A B^T / sqrt((n1 - 1)(n2 - 1))``. Prints a markdown table with
times (best of ``--repeats``), the speed-up and the errors, one row per case as it finishes.

    .venv/bin/python benchmarks/bench_frechet.py            # dim 2048, the table in RESULTS.md
    .venv/bin/python benchmarks/bench_frechet.py --dim 512  # quicker

Thread counts follow OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS.
"""

import argparse
import warnings
import os
import platform
import time

import numpy as np
import scipy
import scipy.linalg
import torch

from ganbench.metrics.frechet import frechet_distance


def pytorch_fid_way(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    """pytorch-fid's ``calculate_frechet_distance`` procedure (sqrtm of the product, real part)."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():  # pytorch-fid's fallback for a singular product
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def correlated_relu_features(n: int, dim: int, seed: int, shift: float, dead: bool) -> np.ndarray:
    """``(n, dim)`` post-ReLU features of correlated Gaussians with a decaying spectrum (2% dead units)."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim) * (np.arange(1, dim + 1) ** -0.5)[:, None]
    features = np.maximum(rng.standard_normal((n, dim)) @ mixing + shift, 0.0)
    if dead:
        features[:, : dim // 50] = 0.0  # dead ReLU units: zero variance
    return features


def exact_trace_sqrt(a: np.ndarray, b: np.ndarray) -> float:
    """``tr sqrt(cov(a) cov(b))`` from the data: nuclear norm of ``A B^T`` (centred), for small n."""
    a_c, b_c = a - a.mean(axis=0), b - b.mean(axis=0)
    scale = np.sqrt((len(a) - 1) * (len(b) - 1))
    return float(np.linalg.svd(a_c @ b_c.T / scale, compute_uv=False).sum())


def best_time(fn, repeats: int) -> tuple[float, float]:
    """(best wall time in seconds, value) over ``repeats`` calls."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def run_case(
    name: str, real: np.ndarray, fake: np.ndarray, repeats: int, sqrtm_repeats: int, exact: bool
) -> str:
    """Time both methods on one pair of feature sets; return a markdown table row."""
    mu1, sigma1 = real.mean(axis=0), np.cov(real, rowvar=False)
    mu2, sigma2 = fake.mean(axis=0), np.cov(fake, rowvar=False)
    t_ours, fid_ours = best_time(lambda: frechet_distance(mu1, sigma1, mu2, sigma2), repeats)
    t_sqrtm, fid_sqrtm = best_time(lambda: pytorch_fid_way(mu1, sigma1, mu2, sigma2), sqrtm_repeats)
    if exact:
        diff = mu1 - mu2
        reference = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * exact_trace_sqrt(real, fake)
        errors = f"{abs(fid_ours - reference):.1e} | {abs(fid_sqrtm - reference):.1e}"
    else:
        errors = f"{abs(fid_ours - fid_sqrtm):.1e} (vs sqrtm) | –"
    return (
        f"| {name} | {len(real)}/{len(fake)} | {fid_ours:.6f} | {t_ours:.2f} | {t_sqrtm:.2f} | "
        f"**{t_sqrtm / t_ours:.1f}×** | {errors} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--n-full", type=int, default=10000, help="samples per set, full-rank case")
    parser.add_argument("--n-singular", type=int, default=1000, help="samples per set, singular case")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ganbench (best kept)")
    parser.add_argument("--sqrtm-repeats", type=int, default=1, help="timed runs of sqrtm (best kept)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Matrix is singular")  # sqrtm on the singular cases

    env = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    threads = {k: os.environ.get(k, "unset") for k in env}
    print(f"# Fréchet distance, dim {args.dim}: numpy {np.__version__}, scipy {scipy.__version__}, "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"torch threads {torch.get_num_threads()}, {threads}, load average {os.getloadavg()[0]:.1f}")
    cases = [("full rank", args.n_full, False), ("2% dead units", args.n_full, True),
             ("singular (n < d), dead units", args.n_singular, True)]
    print("| case | n real/fake | FID | ganbench s | sqrtm s | speed-up "
          "| abs. error ganbench | abs. error sqrtm |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for i, (name, n, dead) in enumerate(cases):
        real = correlated_relu_features(n, args.dim, 2 * i + 1, 0.1, dead)
        fake = correlated_relu_features(n, args.dim, 2 * i + 2, 0.15, dead)
        print(run_case(name, real, fake, args.repeats, args.sqrtm_repeats, exact=n < args.dim), flush=True)
    print(f"(load average after: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
