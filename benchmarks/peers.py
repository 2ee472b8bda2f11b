"""Images -> FID side by side: ganbench, torchmetrics and a pytorch-fid-style pipeline, one run.

All pipelines score the same ``uint8`` digits (MNIST test images; ``n`` real = the first ``n``, ``n``
fake = the next ``n``) with the same FID Inception network (``load_inception()``: the weights of
``default_1.pt``), and each is timed from the ``uint8`` tensors in memory to the FID value:

* **ganbench**: ``extract_features`` (TF 1.x resize, the fused CPU network) -> ``FeatureStats`` ->
  ``fid_from_stats`` (Cholesky + symmetric eigenvalues).
* **ganbench, cached reference**: the real side's statistics read from an ``.npz`` written earlier
  (``FeatureStats.save``); only the fake side is extracted.
* **torchmetrics** ``FrechetInceptionDistance(feature=module)``: the module applies ganbench's own
  preprocessing (``InceptionExtractor.preprocess``) and then ganbench's network as a plain PyTorch
  module (``extractor.network``, channels-last, not fused); torchmetrics accumulates float64 sums and
  takes ``eigvals(S1 @ S2)``. Same preprocessing, same weights: the FIDs must agree to 1e-3 relative.
* **pytorch-fid style**: pytorch-fid's procedure with the same network: float images in [0, 1],
  ``F.interpolate(bilinear, align_corners=False)`` to 299, ``2x - 1``, the network in its default
  (NCHW) memory format, float64 activations, ``np.cov``, ``scipy.linalg.sqrtm(..., disp=False)`` of
  the product exactly as pytorch-fid calls it (with its eps fallback and imaginary-part check). Its
  preprocessing differs (half-pixel resize, ``(x - 127.5) / 127.5`` instead of the TF graph's
  ``(x - 128) / 128``), so its FID differs; the script checks that ganbench's Fréchet step gives the
  same FID on pytorch-fid's own statistics, i.e. that the whole difference comes from the preprocessing.

Then the 28x28 domain FID (mnist classifier: ``uint8`` -> features -> ``FeatureStats``, images/s), and
with ``--levers`` a table of extraction throughput at 299x299 for the levers (memory format, fused
network, batch size, threads; ``--compile`` adds ``torch.compile``), against the machine's measured
float32 convolution roofline. ``--write`` puts the report into ``benchmarks/RESULTS.md`` (between
markers, atomically); without it the report is only printed.

    .venv/bin/python benchmarks/peers.py                      # n=100 per side: a few minutes on 2 cores
    .venv/bin/python benchmarks/peers.py --quick              # n=20, smoke run
    .venv/bin/python benchmarks/peers.py --n 200 --levers --write

Uses ``GANBENCH_DATA`` for the 10,000 MNIST test digits when set, else the 2,000 digits shipped in the
package. Thread count: torch's default (all cores) unless ``--threads``.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy
import scipy.linalg
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from ganbench.errors import DataNotFoundError, SampleSizeWarning
from ganbench.features.base import extract_features
from ganbench.features.classifier import load_classifier
from ganbench.features.inception import INPUT_SIZE, InceptionExtractor, load_inception
from ganbench.files import atomic_write_text
from ganbench.metrics.frechet import FeatureStats, fid_from_stats, frechet_distance

RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- peers.py: begin -->", "<!-- peers.py: end -->"
INCEPTION_GFLOP = 11.42  # 5.71 G multiply-adds per 299x299 image (the 94 convolutions)


# --------------------------------------------------------------------------- data and timing


def load_digit_sets(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint sets of ``count`` MNIST test digits, ``uint8 (count, 1, 28, 28)``: "real" and "fake".

    The first ``count`` and the next ``count`` of the 10,000 test digits with ``GANBENCH_DATA``, else of
    the 2,000 test digits shipped in the package; ``count`` is capped at half of them (5,000 or 1,000).
    Training digits are never used: the domain FID's classifier was trained on them.
    """
    try:
        from ganbench.data.idx import load_mnist

        test = load_mnist("mnist", "test")[0]
    except DataNotFoundError:
        from ganbench.data.sample import load_embedded_sample

        test = load_embedded_sample()[0]
    count = min(count, len(test) // 2)
    return test[:count].unsqueeze(1).contiguous(), test[count : 2 * count].unsqueeze(1).contiguous()


def load_s_note() -> str:
    """The 1-minute load average now."""
    return f"{os.getloadavg()[0]:.1f}"


# --------------------------------------------------------------------------- the pipelines


class Pipeline:
    """One way of computing FID, fed batch by batch, timing its own work.

    ``extract_s`` is everything before the Fréchet step (feature extraction and accumulation, reading
    cached statistics), ``frechet_s`` the Fréchet step; ``images`` counts the images it processed.
    """

    name = ""

    def __init__(self) -> None:
        self.extract_s = self.frechet_s = 0.0
        self.images = 0
        self.value: float | None = None

    @contextmanager
    def timing(self, what: str):
        """Add the wall time of the ``with`` block to ``extract_s`` or ``frechet_s``."""
        start = time.perf_counter()
        yield
        setattr(self, f"{what}_s", getattr(self, f"{what}_s") + time.perf_counter() - start)

    def add(self, images: torch.Tensor, real: bool) -> None:
        with self.timing("extract"):
            self._add(images, real)
        self.images += len(images)

    def fid(self) -> float:
        self.value = self._fid()
        return self.value

    @property
    def total_s(self) -> float:
        return self.extract_s + self.frechet_s

    def _add(self, images: torch.Tensor, real: bool) -> None:
        raise NotImplementedError

    def _fid(self) -> float:
        raise NotImplementedError


class GanbenchPipeline(Pipeline):
    """ganbench's functional path: extract_features -> FeatureStats.update -> fid_from_stats."""

    name = "ganbench"

    def __init__(self, extractor: InceptionExtractor) -> None:
        super().__init__()
        self.extractor = extractor
        self.stats = {side: FeatureStats(extractor.dim, extractor.extractor_id) for side in (True, False)}

    def _add(self, images, real):
        self.stats[real].update(extract_features(self.extractor, images, len(images), progress=False))

    def _fid(self):
        with self.timing("frechet"):
            return fid_from_stats(self.stats[True], self.stats[False])["fid"]


class CachedReferencePipeline(GanbenchPipeline):
    """ganbench with the real side's statistics read from an ``.npz`` written earlier (timed)."""

    name = "ganbench, cached reference stats"

    def __init__(self, extractor: InceptionExtractor, stats_file: Path) -> None:
        super().__init__(extractor)
        with self.timing("extract"):
            self.stats[True] = FeatureStats.load(stats_file)


class SamePreprocessingInception(nn.Module):
    """torchmetrics ``feature`` module: ganbench's preprocessing, then ganbench's plain network."""

    num_features = 2048  # read by torchmetrics (saves its probing forward pass)

    def __init__(self, extractor: InceptionExtractor):
        super().__init__()
        self.extractor = extractor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor.network(self.extractor.preprocess(images))


class TorchmetricsPipeline(Pipeline):
    """torchmetrics' FrechetInceptionDistance; ``compute()`` is the Fréchet step (eigvals of S1 S2)."""

    name = "torchmetrics (same network, not fused)"

    def __init__(self, feature: nn.Module) -> None:
        super().__init__()
        self.metric = FrechetInceptionDistance(feature=feature)

    def _add(self, images, real):
        self.metric.update(images, real=real)

    def _fid(self):
        with self.timing("frechet"):
            return float(self.metric.compute())


class PytorchFidPipeline(Pipeline):
    """pytorch-fid's procedure (``get_activations``, ``np.cov``, ``calculate_frechet_distance``)."""

    name = "pytorch-fid style (own preprocessing, NCHW)"

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.activations = {True: [], False: []}
        self.moments: list[np.ndarray] = []

    def _add(self, images, real):
        # [0, 1] floats, PIL's .convert("RGB"), half-pixel bilinear resize, 2x - 1, no_grad
        x = images.float().div(255).expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        with torch.no_grad():
            self.activations[real].append(self.network(2 * x - 1).numpy())

    def _fid(self):
        with self.timing("extract"):  # calculate_activation_statistics
            for side in (True, False):
                activations = np.concatenate(self.activations[side]).astype(np.float64)  # pytorch-fid's pred_arr
                self.moments += [np.mean(activations, axis=0), np.cov(activations, rowvar=False)]
        with self.timing("frechet"):
            return pytorch_fid_frechet(*self.moments)


def pytorch_fid_frechet(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """pytorch-fid's ``calculate_frechet_distance`` (sqrtm of the product, eps fallback, imaginary check)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():  # scipy >= 1.16 deprecates disp; pytorch-fid still passes it, and
        warnings.simplefilter("ignore", DeprecationWarning)  # so also pays for the error estimate it returns
        covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")  # as pytorch-fid does
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def feed_interleaved(pipelines: list[Pipeline], images: torch.Tensor, real: bool, batch_size: int) -> None:
    """Give every pipeline each batch in turn (rotating who goes first), so that changes in the
    machine's load hit all pipelines alike."""
    for index, start in enumerate(range(0, len(images), batch_size)):
        batch = images[start : start + batch_size]
        for pipeline in pipelines[index % len(pipelines) :] + pipelines[: index % len(pipelines)]:
            pipeline.add(batch, real)


def run_pipelines(extractor: InceptionExtractor, real, fake, batch_size: int) -> list[Pipeline]:
    """All pipelines on the same batches: real sides, then (with the cached-reference pipeline joining,
    its statistics file written from ganbench's real side) fake sides, then each Fréchet step."""
    ganbench = GanbenchPipeline(extractor)
    others = [
        TorchmetricsPipeline(SamePreprocessingInception(extractor)),
        PytorchFidPipeline(copy.deepcopy(extractor.network).to(memory_format=torch.contiguous_format)),
    ]
    feed_interleaved([ganbench, *others], real, True, batch_size)
    with tempfile.TemporaryDirectory() as folder:
        stats_file = Path(folder) / "real_stats.npz"
        ganbench.stats[True].save(stats_file)
        cached = CachedReferencePipeline(extractor, stats_file)
    pipelines = [ganbench, cached, *others]
    feed_interleaved(pipelines, fake, False, batch_size)
    for pipeline in pipelines:
        pipeline.fid()
        print(f"  {pipeline.name}: FID {pipeline.value:.6f}, {pipeline.extract_s:.1f} s + "
              f"{pipeline.frechet_s:.2f} s (load {load_s_note()})", flush=True)
    return pipelines


# --------------------------------------------------------------------------- levers (299x299 extraction)


def conv_roofline_gflops(repeats: int = 5) -> float:
    """Best float32 rate (GFLOP/s) of a large oneDNN convolution with torch's current threads.

    A 3x3, 192 -> 192 channel convolution on 32 channels-last 35x35 maps (the kind of layer Inception
    is made of, big enough to reach the kernels' peak): the practical compute roofline for the
    network. (A float32 matmul is no roofline here: MKL's sgemm is slow on AMD CPUs, oneDNN is not.)
    """
    channels, size, batch = 192, 35, 32
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        conv(x)
        best = min(_timed(lambda: conv(x)) for _ in range(repeats))
    return 2 * batch * size * size * channels * channels * 9 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def lever_variants(extractor: InceptionExtractor, compile_too: bool) -> dict:
    """name -> (forward function on preprocessed channels-last input, input memory format)."""
    plain_nchw = copy.deepcopy(extractor.network).to(memory_format=torch.contiguous_format)
    fused = extractor._cpu_inference_network()
    variants = {
        "plain module, NCHW": (plain_nchw, torch.contiguous_format),
        "plain module, channels-last": (extractor.network, torch.channels_last),
        "fused (ganbench default)": (fused, torch.channels_last),
    }
    if compile_too:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # fold weights as constants, as inductor recommends for CPU inference
        variants["torch.compile(plain, freezing)"] = (torch.compile(extractor.network), torch.channels_last)
    return variants


def measure_levers(extractor: InceptionExtractor, rounds: int, compile_too: bool) -> list[str]:
    """Round-robin throughput (images/s, network forward only) of each lever; markdown rows."""
    rng = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, INPUT_SIZE, INPUT_SIZE), dtype=torch.uint8, generator=rng)
    threads = torch.get_num_threads()
    variants = lever_variants(extractor, compile_too)
    fused = variants["fused (ganbench default)"][0]
    cases = [(name, fn, fmt, 16, threads) for name, (fn, fmt) in variants.items()]
    cases += [("fused (ganbench default)", fused, torch.channels_last, bs, threads) for bs in (8, 32, 64)]
    if threads > 1:
        cases += [("fused (ganbench default)", fused, torch.channels_last, 16, 1)]
    rows, rates = [], {}
    with torch.inference_mode():
        inputs = {}
        for name, fn, fmt, bs, n_threads in cases:
            x = extractor.preprocess(images[:bs]).contiguous(memory_format=fmt)
            inputs[(name, bs, n_threads)] = x
            start = time.perf_counter()
            fn(x)  # warm-up (and compilation)
            if "compile" in name:
                rows.append(f"(torch.compile first call: {time.perf_counter() - start:.0f} s)")
        for _ in range(rounds):
            for name, fn, fmt, bs, n_threads in cases:
                torch.set_num_threads(n_threads)
                seconds = _timed(lambda: fn(inputs[(name, bs, n_threads)]))
                rates.setdefault((name, bs, n_threads), []).append(bs / seconds)
        torch.set_num_threads(threads)
        # the preprocessing alone (TF1 resize of 28x28 uint8 to 299x299, scale, 3 channels)
        digits = load_digit_sets(32)[0]
        prep = min(_timed(lambda: extractor.preprocess(digits)) for _ in range(3)) / len(digits)
    roof = conv_roofline_gflops() / INCEPTION_GFLOP
    baseline = np.median(rates[("plain module, channels-last", 16, threads)])
    table = [
        f"Roofline: a large oneDNN 3x3 convolution runs at {roof * INCEPTION_GFLOP:.0f} GFLOP/s with {threads} "
        f"threads -> at most **{roof:.1f} images/s** for the {INCEPTION_GFLOP} GFLOP (5.71 G multiply-adds) "
        "of one 299x299 image.",
        f"Preprocessing (28x28 uint8 -> 3x299x299, TF1 resize): {prep * 1e3:.1f} ms per image.",
        "",
        "| variant | batch | threads | images/s (median) | best | vs plain channels-last | of roofline |",
        "|---|---|---|---|---|---|---|",
    ]
    for (name, bs, n_threads), values in rates.items():
        median = float(np.median(values))
        table.append(
            f"| {name} | {bs} | {n_threads} | {median:.2f} | {max(values):.2f} | "
            f"{median / baseline:.2f}× | {median / roof:.0%} |"
        )
    return rows + table


# --------------------------------------------------------------------------- domain FID (28x28)


class ClassifierFeature(nn.Module):
    """torchmetrics ``feature`` module around the mnist classifier."""

    num_features = 128

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images):
        return self.classifier(images)


def domain_fid(count: int, repeats: int) -> list[str]:
    """uint8 digits -> mnist-classifier features -> FeatureStats -> FID: images/s (best of ``repeats``)."""
    classifier = load_classifier("mnist")
    real, fake = load_digit_sets(count)
    count = len(real)

    def ganbench_path():
        stats = [FeatureStats.from_features(extract_features(classifier, x, 1024, progress=False),
                                            classifier.extractor_id) for x in (real, fake)]
        return fid_from_stats(*stats)["fid"]

    def torchmetrics_path():
        metric = FrechetInceptionDistance(feature=ClassifierFeature(classifier))
        for images, is_real in ((real, True), (fake, False)):
            for start in range(0, len(images), 1024):
                metric.update(images[start : start + 1024], real=is_real)
        return float(metric.compute())

    rows = ["| pipeline (mnist classifier, 128-d) | images | best s | images/s | FID |", "|---|---|---|---|---|"]
    for name, fn in (("ganbench", ganbench_path), ("torchmetrics, same classifier", torchmetrics_path)):
        fn()  # warm-up
        runs = [(_timed_value(fn)) for _ in range(repeats)]
        seconds, fid = min(runs)
        rows.append(f"| {name} | {2 * count} | {seconds:.3f} | **{2 * count / seconds:,.0f}** | {fid:.4f} |")
    return rows


def _timed_value(fn) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# --------------------------------------------------------------------------- report


def end_to_end_table(results: list[Pipeline], reference: Pipeline) -> list[str]:
    """Markdown rows: times and the ratio of each pipeline's time to ganbench's."""
    rows = [
        "| pipeline | images | extract + accumulate s | Fréchet s | total s | total / ganbench | FID |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r.name} | {r.images} | {r.extract_s:.1f} | {r.frechet_s:.2f} | {r.total_s:.1f} | "
            f"**{r.total_s / reference.total_s:.2f}×** | {r.value:.6f} |"
        )
    return rows


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace (or append) the text between the peers.py markers in ``path``, atomically."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block
    atomic_write_text(path, new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="images per side for the Inception FID (default 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="Inception batch size for every pipeline")
    parser.add_argument(
        "--domain-n", type=int, default=5000, help="test digits per side for the 28x28 domain FID (at most 5000)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="n=20, domain-n=2000, no levers: a smoke run")
    parser.add_argument("--levers", action="store_true", help="also measure the extraction levers at 299x299")
    parser.add_argument("--lever-rounds", type=int, default=3, help="round-robin rounds of the levers table")
    parser.add_argument("--compile", action="store_true", help="add torch.compile to the levers (slow to compile)")
    parser.add_argument("--write", action="store_true", help="put the report into benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.n, args.domain_n, args.levers = 20, 2000, False
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=SampleSizeWarning)  # n < 2048 is intended here
    warnings.filterwarnings("ignore", message="Matrix is singular")  # sqrtm on n < d covariances

    report = []

    def emit(*lines: str) -> None:
        """Add lines to the report and print them now (long runs show progress)."""
        report.extend(lines)
        print("\n".join(lines), flush=True)

    emit(
        f"Command: `{' '.join(['.venv/bin/python benchmarks/peers.py', *sys.argv[1:]])}`",
        "",
        f"Machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads, torchmetrics {torchmetrics.__version__}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}; {args.n} real + {args.n} fake MNIST digits "
        f"(28x28 -> 299x299), batch size {args.batch_size}. Load average (1 min) at the start: {load_s_note()}.",
    )

    start = time.perf_counter()
    extractor = load_inception()
    load_seconds = time.perf_counter() - start
    real, fake = load_digit_sets(args.n)
    with torch.inference_mode():  # build the fused network outside the timings (once per process)
        extractor(real[:1])
    ganbench, cached, torchmetrics_result, pytorch_fid_result = run_pipelines(extractor, real, fake, args.batch_size)
    pytorch_fid_moments = pytorch_fid_result.moments

    # The Fréchet step on pytorch-fid's own statistics: ganbench vs scipy.linalg.sqrtm, same input.
    same_stats_seconds, same_stats_fid = _timed_value(lambda: frechet_distance(*pytorch_fid_moments))
    agreement_tm = abs(torchmetrics_result.value - ganbench.value) / ganbench.value
    agreement_pf = abs(same_stats_fid - pytorch_fid_result.value) / pytorch_fid_result.value
    preprocessing_gap = (pytorch_fid_result.value - ganbench.value) / ganbench.value
    emit(
        "",
        f"Inception weights loaded in {load_seconds:.1f} s (not in the timings). Load average after the FID "
        f"pipelines: {load_s_note()}.",
        "",
        *end_to_end_table([ganbench, cached, torchmetrics_result, pytorch_fid_result], ganbench),
        "",
        f"* Extraction: ganbench {ganbench.images / ganbench.extract_s:.2f} images/s, torchmetrics with the "
        f"plain module {torchmetrics_result.images / torchmetrics_result.extract_s:.2f} images/s "
        f"({torchmetrics_result.extract_s / ganbench.extract_s:.2f}× ganbench's time), pytorch-fid style "
        f"{pytorch_fid_result.images / pytorch_fid_result.extract_s:.2f} images/s.",
        f"* Fréchet step at 2048-d: ganbench {ganbench.frechet_s:.2f} s, torchmetrics (eigvals of S1 S2) "
        f"{torchmetrics_result.frechet_s:.2f} s (**{torchmetrics_result.frechet_s / ganbench.frechet_s:.1f}×**), "
        f"scipy sqrtm {pytorch_fid_result.frechet_s:.2f} s; on the same (pytorch-fid's) statistics ganbench "
        f"takes {same_stats_seconds:.2f} s: **{pytorch_fid_result.frechet_s / same_stats_seconds:.1f}×** faster "
        "than sqrtm.",
        f"* Agreement: torchmetrics vs ganbench (same preprocessing, same weights) {agreement_tm:.1e} relative "
        f"({'within' if agreement_tm <= 1e-3 else 'NOT within'} 1e-3); ganbench's Fréchet step on pytorch-fid's "
        f"statistics vs sqrtm {agreement_pf:.1e} relative. pytorch-fid's FID is {preprocessing_gap:+.2%} off "
        "ganbench's: the preprocessing alone (half-pixel resize and (x - 127.5) / 127.5 instead of TF 1.x's "
        "resize and (x - 128) / 128).",
    )
    emit("", "Domain FID (28x28, real: MNIST test digits, fake: other MNIST test digits), uint8 -> features -> "
         "statistics -> FID, best of 3:", "", *domain_fid(args.domain_n, repeats=3))
    if args.levers:
        emit("", "Extraction levers at 299x299 (network forward on preprocessed input, round-robin over "
             f"{args.lever_rounds} rounds so that load changes hit every variant alike):", "",
             *measure_levers(extractor, args.lever_rounds, args.compile))
    emit("", f"Load average at the end: {load_s_note()}.")
    if args.write:
        write_section("\n".join(report))
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
