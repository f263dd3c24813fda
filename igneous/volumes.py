"""Format knowledge for Precomputed layers, in one place.

Opening layers with our defaults, the encodings and compressions we accept, how an
encoding's parameters are written into a scale, and the info edits shared by the
planners (truncating scales, cleaning transferred infos).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Optional

import numpy as np
from cloudfiles import paths as cfpaths
from cloudvolume import CloudVolume
from cloudvolume.exceptions import InfoUnavailableError

from igneous.errors import InvalidParameterError, LayerNotFoundError

__all__ = [
    "ENCODINGS",
    "LOSSY_ENCODINGS",
    "open_volume",
    "normalize_layer_path",
    "check_info",
    "check_writable",
    "check_mip",
    "normalize_encoding",
    "normalize_compress",
    "default_compress",
    "check_encoding",
    "output_encoding",
    "set_encoding",
    "truncate_scales",
    "clean_xfer_info",
]

log = logging.getLogger(__name__)

ENCODINGS = (
    "raw",
    "png",
    "jpeg",
    "jxl",
    "compressed_segmentation",
    "compresso",
    "crackle",
    "fpzip",
    "kempressed",
    "zfpc",
)
ENCODING_ALIASES = {"cseg": "compressed_segmentation", "ckl": "crackle", "cpso": "compresso", "jpegxl": "jxl"}
LOSSY_ENCODINGS = ("jpeg", "jxl", "zfpc", "kempressed")
# Image codecs whose output is already entropy coded: a second compression pass only costs time.
SELF_COMPRESSED = ("jpeg", "jxl", "png", "fpzip", "zfpc", "kempressed")
COMPRESSIONS = ("gzip", "br", "zstd")


def open_volume(path: str, mip: int = 0, **kwargs) -> CloudVolume:
    """A CloudVolume with the options every task wants.

    A missing layer, a file given where the layer directory belongs (``LAYER/info``), and an
    ``info`` that is not JSON or describes no usable scale are user errors, each one line.
    """
    kwargs.setdefault("progress", False)
    kwargs.setdefault("cdn_cache", False)
    try:
        vol = CloudVolume(path, mip=0, **kwargs)
    except InfoUnavailableError:
        raise LayerNotFoundError(path) from None
    except NotADirectoryError:
        raise InvalidParameterError(f"{path} is a file; give the layer's directory (the one holding 'info')") from None
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise InvalidParameterError(
            f"the info file of {path} is not a usable Precomputed info ({type(err).__name__}: {err}); fix or "
            "recreate it"
        ) from None
    check_info(vol.info, path)
    check_mip(vol, mip)
    vol.mip = mip
    return vol


def check_info(info: dict, path: str) -> None:
    """Refuse an info whose scales cannot describe a volume (sizes, chunks, resolutions)."""
    scales = info.get("scales") if isinstance(info, dict) else None
    if not isinstance(scales, list) or not scales:
        raise InvalidParameterError(f"the info file of {path} lists no scales; fix or recreate it")
    for i, scale in enumerate(scales):
        try:
            size = [int(v) for v in scale["size"]]
            chunks = [[int(v) for v in c] for c in scale["chunk_sizes"]]
            resolution = [float(v) for v in scale["resolution"]]
            [int(v) for v in scale["voxel_offset"]]
        except (KeyError, TypeError, ValueError):
            raise InvalidParameterError(
                f"scale {i} of {path} lacks a size, chunk_sizes, resolution or voxel_offset of three numbers; "
                "fix the info"
            ) from None
        if len(size) != 3 or min(size) < 1 or not chunks or any(len(c) != 3 or min(c) < 1 for c in chunks):
            raise InvalidParameterError(
                f"scale {i} of {path} has size {size} and chunk sizes {chunks}; both must be positive; fix the info"
            )
        if len(resolution) != 3 or min(resolution) <= 0:
            raise InvalidParameterError(f"scale {i} of {path} has resolution {resolution}; it must be positive")


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/")
QUEUE_SCHEMES = ("fq", "sqs", "pubsub")


def normalize_layer_path(path: str) -> str:
    """A layer location as CloudVolume takes it: a bare local path becomes absolute ``file://``.

    Anything that looks like a URL must use a scheme cloud-files knows (``file``, ``gs``,
    ``s3``, ``http(s)``, ``mem`` and their aliases, optionally behind a format such as
    ``precomputed://`` or ``zarr://``): a typo like ``s4://bucket`` is refused instead of
    becoming the relative directory ``./s4:/bucket``, and a queue URL is never a layer.
    """
    text = str(path).strip()
    if not text:
        raise InvalidParameterError("a layer path is required")
    match = _SCHEME.match(text)
    if match is None:
        return cfpaths.normalize(text)
    scheme = match.group(1).lower()
    if "://" not in text:
        raise InvalidParameterError(f"{text} looks like a URL missing a slash; write {scheme}://… (or a plain local path)")
    if scheme in QUEUE_SCHEMES:
        raise InvalidParameterError(f"{text} is a queue ({scheme}://), not a layer; give the layer's path or URL")
    try:
        cfpaths.extract(text)
    except Exception:
        known = set(cfpaths.ALLOWED_PROTOCOLS) | set(cfpaths.ALLOWED_FORMATS)
        schemes = re.findall(r"([A-Za-z][A-Za-z0-9+.-]*)://", text) or [scheme]
        bad = next((s for s in schemes if s.lower() not in known), schemes[-1])
        protocols = ", ".join(f"{p}://" for p in cfpaths.ALLOWED_PROTOCOLS)
        raise InvalidParameterError(
            f"{text}: unknown scheme {bad}://; use one of {protocols} (optionally behind precomputed://, zarr://, "
            "n5://, graphene://) or a local path"
        ) from None
    return cfpaths.normalize(text)


def check_writable(path: str) -> None:
    """Refuse a local (file://) destination this process cannot write, before anything is written.

    Cloud stores are not probed (that would cost a request and a write); their errors surface
    on the first write, which is the info, so nothing else is written either.
    """
    try:
        extracted = cfpaths.extract(cfpaths.normalize(path))
    except Exception:
        return
    if extracted.protocol != "file":
        return
    probe = extracted.path.rstrip("/") or "/"
    while not os.path.exists(probe):
        probe = os.path.dirname(probe) or "/"
    if not os.path.isdir(probe):
        raise InvalidParameterError(f"cannot write {path}: {probe} is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidParameterError(f"cannot write {path}: {probe} is not writable by this user")


def check_mip(vol: CloudVolume, mip: int, name: str = "mip") -> None:
    nscales = len(vol.info["scales"])
    if not isinstance(mip, (int, np.integer)) or not 0 <= mip < nscales:
        raise InvalidParameterError(f"{name} must be an integer in [0, {nscales - 1}] for this layer; got {mip!r}")


def normalize_encoding(encoding: Optional[str]) -> Optional[str]:
    """Canonical encoding name, None for "keep the existing one"."""
    if encoding is None:
        return None
    enc = str(encoding).lower()
    if enc in ("auto", ""):
        return None
    enc = ENCODING_ALIASES.get(enc, enc)
    if enc not in ENCODINGS:
        raise InvalidParameterError(f"encoding must be one of {', '.join(ENCODINGS)} (or an alias); got {encoding!r}")
    return enc


def default_compress(encoding: str):
    """What to compress chunk files with when the user did not say (SPEC: 'auto')."""
    return False if encoding in SELF_COMPRESSED else "gzip"


def normalize_compress(compress, encoding: str):
    """Canonical compression: False, 'gzip', 'br' or 'zstd'. None/'auto' picks by encoding."""
    if compress is None or (isinstance(compress, str) and compress.lower() == "auto"):
        return default_compress(encoding)
    if compress is True:
        return "gzip"
    if compress is False or compress == 0:
        return False
    comp = str(compress).lower()
    if comp in ("none", "false", "0", ""):
        return False
    if comp == "true":
        return "gzip"
    if comp not in COMPRESSIONS:
        raise InvalidParameterError(f"compress must be one of none, {', '.join(COMPRESSIONS)}; got {compress!r}")
    if encoding in SELF_COMPRESSED:
        # Compressing jpeg/png/jxl again wastes CPU and Neuroglancer expects them bare.
        return False
    return comp


def _encoding_params(encoding: str, encoding_level, encoding_effort) -> dict:
    """The scale fields an encoding's level/effort are stored in."""
    fields = {}
    if encoding == "compressed_segmentation":
        fields["compressed_segmentation_block_size"] = [8, 8, 8]
    if encoding_level is not None:
        try:
            level = int(encoding_level)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"encoding_level must be an integer; got {encoding_level!r}") from None
        ranges = {
            "jpeg": ("jpeg_quality", 0, 100),
            "jxl": ("jxl_quality", 0, 100),
            "png": ("png_level", 0, 9),
            "fpzip": ("fpzip_precision", 0, 64),
        }
        if encoding in ranges:
            key, lo, hi = ranges[encoding]
            if not lo <= level <= hi:
                raise InvalidParameterError(f"encoding_level for {encoding} must be in [{lo}, {hi}]; got {level}")
            fields[key] = level
    if encoding == "jxl" and encoding_effort is not None:
        effort = int(encoding_effort)
        if not 1 <= effort <= 10:
            raise InvalidParameterError(f"encoding_effort must be in [1, 10]; got {encoding_effort!r}")
        fields["jxl_effort"] = effort
    return fields


def check_encoding(encoding: str, dtype, num_channels: int, layer_type: str = "image") -> None:
    """Refuse an encoding that cannot store this dtype and channel count faithfully.

    A sample chunk is encoded and decoded with the installed codecs: a codec that rejects
    the data, or one that scrambles it (some codecs mishandle multi-channel chunks), is
    refused before a single chunk is written. Lossy codecs must stay close on a smooth image.
    """
    from cloudvolume import chunks

    dtype = np.dtype(dtype)
    shape = (16, 16, 4, int(num_channels))
    sample = _sample_chunk(shape, dtype, smooth=encoding in LOSSY_ENCODINGS)
    try:
        decoded = chunks.decode(
            chunks.encode(sample, encoding, block_size=(8, 8, 8)),
            encoding,
            shape=shape,
            dtype=dtype,
            block_size=(8, 8, 8),
        )
    except Exception as err:  # codecs raise many different types for the same problem
        first = str(err).splitlines()[0] if str(err) else "unsupported"
        raise InvalidParameterError(
            f"encoding {encoding} cannot store {dtype.name} data with {num_channels} channel(s) "
            f"({type(err).__name__}: {first})"
        ) from None
    decoded = np.asarray(decoded).reshape(shape)
    if encoding in LOSSY_ENCODINGS:
        faithful = np.abs(decoded.astype(np.float64) - sample.astype(np.float64)).mean() <= 0.05 * _span(dtype)
    else:
        faithful = np.array_equal(decoded, sample)
    if not faithful:
        raise InvalidParameterError(
            f"encoding {encoding} does not round-trip {dtype.name} data with {num_channels} channel(s) "
            f"in the installed codecs; choose another encoding (e.g. raw)"
        )


def _span(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 100.0


def _sample_chunk(shape, dtype: np.dtype, smooth: bool) -> np.ndarray:
    rng = np.random.default_rng(0)
    if smooth:
        x = np.linspace(0, 1, shape[0])[:, None, None, None]
        c = np.arange(shape[3])[None, None, None, :] / max(1, shape[3])
        data = (0.2 + 0.6 * x * np.ones(shape) * (1 - 0.5 * c)) * _span(dtype)
    elif np.issubdtype(dtype, np.integer):
        data = rng.integers(0, min(np.iinfo(dtype).max, 2**31), size=shape)
    else:
        data = rng.random(shape) * 100
    return np.asfortranarray(data.astype(dtype))


def set_encoding(cv: CloudVolume, mip: int, encoding: Optional[str], encoding_level=None, encoding_effort=None) -> None:
    """Write an encoding and its parameters into ``cv.info['scales'][mip]`` (not committed)."""
    scale = cv.scale if mip is None else cv.info["scales"][mip]
    if encoding is not None:
        encoding = normalize_encoding(encoding)
        scale["encoding"] = encoding
    encoding = scale["encoding"]
    if encoding != "compressed_segmentation":
        scale.pop("compressed_segmentation_block_size", None)
    scale.update(_encoding_params(encoding, encoding_level, encoding_effort))


def output_encoding(vol: CloudVolume, mip: int, encoding: Optional[str], compress):
    """Validate what a planner will write: ``(encoding or None to keep, compress)``.

    The encoding (given, or ``mip``'s) must store the layer's dtype and channels
    faithfully; ``compress`` is normalised for it.
    """
    encoding = normalize_encoding(encoding)
    written = encoding or vol.meta.encoding(mip)
    check_encoding(written, vol.dtype, vol.num_channels)
    return encoding, normalize_compress(compress, written)


def truncate_scales(info: dict, mip: int) -> None:
    """Drop every scale above ``mip`` (they are about to be rebuilt)."""
    info["scales"] = info["scales"][: mip + 1]


def clean_xfer_info(info: dict) -> dict:
    """Remove keys that point at derived data a transfer does not copy (meshes, skeletons)."""
    for key in ("mesh", "meshing", "skeletons"):
        info.pop(key, None)
    return info
