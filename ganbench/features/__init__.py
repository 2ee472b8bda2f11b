"""Feature extractors: the FID Inception network and the 28x28 domain classifiers.

``get_feature_extractor(name)`` is the one entry point; names are ``inception``, ``mnist``,
``fashion`` and ``mnistm`` (RGB).
"""

from ganbench.features.base import FeatureExtractor

__all__ = ["FeatureExtractor", "get_feature_extractor", "EXTRACTOR_NAMES"]

EXTRACTOR_NAMES = ("inception", "mnist", "fashion", "mnistm")


def get_feature_extractor(name: str, weights=None, device: str | None = None) -> FeatureExtractor:
    """Build the extractor called ``name`` (weights from ``weights`` path or its default place)."""
    if name == "inception":
        from ganbench.features.inception import load_inception

        extractor = load_inception(weights)
    elif name in ("mnist", "fashion", "mnistm"):
        from ganbench.features.classifier import load_classifier

        extractor = load_classifier(name, weights)
    else:
        raise ValueError(f"unknown feature extractor {name!r}; choose from {', '.join(EXTRACTOR_NAMES)}")
    extractor.eval()
    return extractor.to(device) if device else extractor
