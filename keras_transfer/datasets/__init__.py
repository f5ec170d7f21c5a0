"""Small datasets that ship inside installed packages, for demos, tests and benchmarks.

Nothing here downloads anything: the images come from scikit-learn's bundled digits,
scikit-image's bundled natural images and matplotlib's bundled fonts; the text from a
seeded grammar. `domain_pair(name)` builds any registered (source, target) pair;
`list_domain_pairs()` names them; `register_folder_pair` adds a pair made of two
image folders of your own.
"""

from keras_transfer.datasets.digits import DomainSplit, digits_domains, mnist_m_style
from keras_transfer.datasets.folder_pairs import folder_pair, register_folder_pair
from keras_transfer.datasets.fonts import fonts_digits_domains, render_digits
from keras_transfer.datasets.registry import (
    DomainPairInfo,
    domain_pair,
    domain_pair_info,
    list_domain_pairs,
    register_domain_pair,
)
from keras_transfer.datasets.shifts import (
    digits_rotnoise_domains,
    digits_svhnlike_domains,
    rotate_noise,
    svhn_style,
)
from keras_transfer.datasets.text import sentiment_domains, sentiment_reviews

__all__ = [
    "DomainPairInfo",
    "DomainSplit",
    "digits_domains",
    "digits_rotnoise_domains",
    "digits_svhnlike_domains",
    "domain_pair",
    "domain_pair_info",
    "folder_pair",
    "fonts_digits_domains",
    "list_domain_pairs",
    "mnist_m_style",
    "register_domain_pair",
    "register_folder_pair",
    "render_digits",
    "rotate_noise",
    "sentiment_domains",
    "sentiment_reviews",
    "svhn_style",
]
