"""Small datasets that ship inside installed packages, for demos, tests and benchmarks.

Nothing here downloads anything: the images come from scikit-learn's bundled digits and
scikit-image's bundled natural images.
"""

from keras_transfer.datasets.digits import DomainSplit, digits_domains, mnist_m_style
from keras_transfer.datasets.text import sentiment_domains, sentiment_reviews  # noqa: F401

__all__ = ["DomainSplit", "digits_domains", "mnist_m_style"]
