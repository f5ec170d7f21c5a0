"""tf.data helpers: arrays, image folders, TFDS, and source/target domain pairs."""

from keras_transfer.data.directory import from_directory
from keras_transfer.data.files import image_files
from keras_transfer.data.folders import ImageFiles
from keras_transfer.data.lazy import LazyArray
from keras_transfer.data.pairs import domain_pairs
from keras_transfer.data.pipelines import finish, from_arrays, from_tfds
from keras_transfer.data.spill import SpilledArray

__all__ = [
    "ImageFiles",
    "LazyArray",
    "SpilledArray",
    "domain_pairs",
    "finish",
    "from_arrays",
    "from_directory",
    "from_tfds",
    "image_files",
]
