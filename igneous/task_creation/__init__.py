"""Task creation: plan work over a volume and return lazy iterators of tasks (SPEC §2).

``igneous.task_creation.X`` reaches every ``create_*`` function; helpers live in the
submodules (``common``, ``image``, …).
"""

from igneous.task_creation.common import FinelyDividedTaskIterator, get_bounds, num_tasks, set_encoding
from igneous.task_creation.contrast import (  # issue 13
    create_clahe_tasks,
    create_contrast_normalization_tasks,
    create_luminance_levels_tasks,
)
from igneous.task_creation.downsample import create_fixup_downsample_tasks
from igneous.task_creation.image import *  # noqa: F403
from igneous.task_creation.image import __all__ as _image_all
from igneous.task_creation.mesh import *  # noqa: F403
from igneous.task_creation.mesh import __all__ as _mesh_all
from igneous.task_creation.obsolete import *  # noqa: F403
from igneous.task_creation.obsolete import __all__ as _obsolete_all
from igneous.task_creation.reorder import create_reordering_tasks
from igneous.task_creation.roi import compute_rois  # issue 13
from igneous.task_creation.skeleton import *  # noqa: F403
from igneous.task_creation.skeleton import __all__ as _skeleton_all

__all__ = (
    list(_image_all)
    + ["create_reordering_tasks", "create_fixup_downsample_tasks"]
    + list(_mesh_all)
    + list(_obsolete_all)
    + list(_skeleton_all)
)
__all__ += [  # issue 13: contrast and ROI (SPEC §2.1)
    "create_luminance_levels_tasks",
    "create_contrast_normalization_tasks",
    "create_clahe_tasks",
    "compute_rois",
]

_helpers = (FinelyDividedTaskIterator, get_bounds, num_tasks, set_encoding)
