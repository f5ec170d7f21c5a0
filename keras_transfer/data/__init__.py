"""tf.data helpers: arrays, image folders, TFDS, and source/target domain pairs."""

from keras_transfer.data.directory import from_directory
from keras_transfer.data.files import image_files
from keras_transfer.data.folders import ImageFiles
from keras_transfer.data.pairs import domain_pairs
from keras_transfer.data.pipelines import finish, from_arrays, from_tfds

__all__ = [
    "ImageFiles",
    "domain_pairs",
    "finish",
    "from_arrays",
    "from_directory",
    "from_tfds",
    "image_files",
]
