"""Small datasets that ship inside installed packages, for demos, tests and benchmarks.

Nothing here downloads anything: the images come from scikit-learn's bundled digits and
scikit-image's bundled natural images.
"""

from keras_transfer.datasets.digits import DomainSplit, digits_domains, mnist_m_style

__all__ = ["DomainSplit", "digits_domains", "mnist_m_style"]
