"""Typed errors raised by ganbench.

Every error ganbench raises on bad input derives from :class:`GanbenchError`, and each message names
the problem and, where there is one, the fix. The classes also derive from the matching builtin
(``ValueError``, ``FileNotFoundError``, ...) so generic handlers keep working.
"""


class GanbenchError(Exception):
    """Base class of every error ganbench raises on purpose."""


class InvalidImageError(GanbenchError, ValueError):
    """Image data that cannot be scored."""


class NonFiniteImageError(InvalidImageError):
    """Images contain NaN or Inf values."""


class ImageRangeError(InvalidImageError):
    """Images have the wrong dtype or values outside the expected range."""


class ImageShapeError(InvalidImageError):
    """Images have the wrong number of dimensions or channels."""


class ImageSizeMismatchError(InvalidImageError):
    """Paired images (prediction and target) do not have the same shape."""


class TooFewSamplesError(GanbenchError, ValueError):
    """A metric was given fewer samples than it needs."""


class EmptyDatasetError(GanbenchError, ValueError):
    """A folder or file holds no usable images."""


class CorruptFileError(GanbenchError, ValueError):
    """A file exists but cannot be decoded (truncated image, bad IDX header, broken archive...)."""


class DataNotFoundError(GanbenchError, FileNotFoundError):
    """A data set is not where ganbench looked for it."""


class WeightsNotFoundError(GanbenchError, FileNotFoundError):
    """Network weights are missing; the message says how to get them."""


class WeightsIntegrityError(GanbenchError, ValueError):
    """Network weights are truncated, have the wrong hash, or do not fit the architecture."""


class FeatureMismatchError(GanbenchError, ValueError):
    """Statistics computed with different feature extractors cannot be compared."""


class CheckpointError(GanbenchError, ValueError):
    """A checkpoint is malformed, unsafe to load, or does not match the model."""


class ConfigError(GanbenchError, ValueError):
    """A config (training, suite, task) is missing, malformed, or names an unknown model, option or value."""


class TrainingDivergedError(GanbenchError, RuntimeError):
    """A loss became NaN/Inf or exploded; the message names the step and the last good checkpoint."""


class SampleSizeWarning(UserWarning):
    """A distribution metric was computed from fewer samples than it should be (e.g. n < feature dim)."""
