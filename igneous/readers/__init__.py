"""Format knowledge for getting data in: array files, 2-D images, image stacks, and where they live.

Format libraries (tifffile, Pillow, h5py, nibabel, pynrrd) are optional extras imported
when a file needs them; a missing one is reported with the extra that installs it.
"""

from igneous.readers.arrays import ARRAY_EXTENSIONS, ArrayFile, is_array_file, open_array
from igneous.readers.images import IMAGE_EXTENSIONS, SliceHeader, TiffReader, probe_image
from igneous.readers.stacks import ImageStack, check_numbering, discover_stack, read_box
from igneous.readers.storage import natural_key

__all__ = [
    "ARRAY_EXTENSIONS",
    "ArrayFile",
    "is_array_file",
    "open_array",
    "IMAGE_EXTENSIONS",
    "SliceHeader",
    "TiffReader",
    "probe_image",
    "ImageStack",
    "check_numbering",
    "discover_stack",
    "read_box",
    "natural_key",
]
