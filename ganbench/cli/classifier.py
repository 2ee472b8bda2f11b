"""``ganbench classifier``: train or evaluate the 28x28 domain classifiers (MNIST, Fashion-MNIST, MNIST-M).

Examples::

    ganbench classifier train mnist --threads 1      # rewrites ganbench/features/shipped_weights/mnist.safetensors
    ganbench classifier train fashion --epochs 10 --seed 0 --out fashion.safetensors
    ganbench classifier train mnistm --threads 1     # RGB, on MNIST-M train (construction seed 0)
    ganbench classifier eval mnist --json            # test accuracy and real-data FID/KID/IS references

``eval`` reports the test accuracy and the real-vs-real references measured with the classifier's own
features: FID(train first 10k, test 10k), KID(train first 10k, test 10k) and IS(test 10k). A generator
whose numbers approach them is as close to the data as a second sample of real images.
"""

import argparse

import torch

from ganbench.cli import print_result
from ganbench.features.classifier import (
    CLASSIFIER_NAMES,
    DEFAULT_EPOCHS,
    load_classifier,
    load_domain,
    train_classifier,
)

# Real-data references: the first REFERENCE_TRAIN training images against the whole test split.
REFERENCE_TRAIN = 10_000
IS_SPLITS = 10


def register(subparsers) -> None:
    """Add the ``classifier`` sub-command."""
    parser = subparsers.add_parser(
        "classifier",
        help="train or evaluate the MNIST / Fashion-MNIST / MNIST-M feature classifiers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    train = actions.add_parser(
        "train", help="train a classifier on its 60k training images and save safetensors weights",
        description="Deterministic for a given seed, torch version and thread count (CPU).",
    )
    train.add_argument("name", choices=CLASSIFIER_NAMES)
    defaults = ", ".join(f"{name} {epochs}" for name, epochs in DEFAULT_EPOCHS.items())
    train.add_argument("--epochs", type=int, default=None, help=f"training epochs (default: {defaults})")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--out", metavar="PATH", help="weights file to write (default: the shipped one)")
    train.add_argument("--threads", type=int, default=None,
                       help="CPU threads (default: torch's); the shipped weights were trained with 1")
    train.add_argument("--data-root", default=None, help="data root (default: $GANBENCH_DATA)")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.set_defaults(func=run)

    evaluate = actions.add_parser(
        "eval", help="test accuracy and the real-data FID/KID/IS references of a classifier",
    )
    evaluate.add_argument("name", choices=CLASSIFIER_NAMES)
    evaluate.add_argument("--weights", metavar="PATH", help="safetensors weights (default: the shipped ones)")
    evaluate.add_argument("--data-root", default=None, help="data root (default: $GANBENCH_DATA)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Carry out ``classifier train`` or ``classifier eval``; return the exit code."""
    if args.action == "train":
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        result = train_classifier(
            args.name, epochs=args.epochs, seed=args.seed, out=args.out, root=args.data_root
        )
        text = (f"{args.name}: test accuracy {100 * result['test_accuracy']:.2f}% after {result['epochs']} "
                f"epochs (seed {result['seed']}, {result['seconds']:.0f} s)\nweights: {result['path']} "
                f"(sha256 {result['sha256']})")
        print_result(result, args.json, text)
        return 0
    result = evaluate_classifier(args.name, args.weights, args.data_root)
    print_result(result, args.json, format_evaluation(result))
    return 0


def evaluate_classifier(name: str, weights=None, root=None) -> dict:
    """Test accuracy of classifier ``name`` and the real-data FID, KID and IS in its feature space."""
    from ganbench.metrics.frechet import FeatureStats, fid_from_stats
    from ganbench.metrics.inception_score import inception_score
    from ganbench.metrics.kid import kernel_inception_distance

    model = load_classifier(name, weights)
    train_images, _ = load_domain(name, "train", root)
    test_images, test_labels = load_domain(name, "test", root)
    train_images = train_images[:REFERENCE_TRAIN]

    train_features = model(train_images)
    test_features = model(test_images)
    test_logits = model.logits(test_images)
    test_accuracy = float((test_logits.argmax(1) == test_labels).double().mean())

    fid = fid_from_stats(
        FeatureStats.from_features(train_features, model.extractor_id),
        FeatureStats.from_features(test_features, model.extractor_id),
    )["fid"]
    kid = kernel_inception_distance(train_features, test_features)
    score = inception_score(test_logits, splits=IS_SPLITS)
    return {
        "classifier": name,
        "extractor_id": model.extractor_id,
        "test_accuracy": test_accuracy,
        "test_samples": len(test_images),
        "fid": {"value": fid, "train_samples": len(train_images), "test_samples": len(test_images)},
        "kid": {
            "mean": kid["kid_mean"], "std": kid["kid_std"], "train_samples": kid["n_real"],
            "test_samples": kid["n_fake"], "subset_size": kid["subset_size"],
            "num_subsets": kid["num_subsets"],
        },
        "inception_score": {"mean": score["is_mean"], "std": score["is_std"], "test_samples": score["n"],
                            "splits": IS_SPLITS},
    }


def format_evaluation(result: dict) -> str:
    """Human-readable report of :func:`evaluate_classifier`."""
    fid, kid, score = result["fid"], result["kid"], result["inception_score"]
    return "\n".join([
        f"{result['classifier']} classifier {result['extractor_id']}",
        f"test accuracy: {100 * result['test_accuracy']:.2f}% ({result['test_samples']} images)",
        "real-data references in this classifier's feature space:",
        f"  FID(train first {fid['train_samples']}, test {fid['test_samples']}) = {fid['value']:.4f}",
        f"  KID(train first {kid['train_samples']}, test {kid['test_samples']}) = "
        f"{kid['mean']:.6f} ± {kid['std']:.6f} ({kid['num_subsets']} subsets of {kid['subset_size']})",
        f"  IS(test {score['test_samples']}, {score['splits']} splits) = "
        f"{score['mean']:.4f} ± {score['std']:.4f}",
    ])
