"""Label-keyed shards (meshes, skeletons; SPEC §4.2–4.4): one home for their format.

A sharded mesh or skeleton directory holds ``{shard}.shard`` files
(``neuroglancer_uint64_sharded_v1``, hash ``murmurhash3_x86_128``, preshift 0) and, written by
the planner before any task runs, ``{shard}.labels``: gzip JSON lists of the labels each shard
must hold. A merge task builds exactly one shard from its ``.labels``, then decodes what it
wrote (:func:`read_shard_index`) and checks the label set.
"""

from __future__ import annotations

import gzip
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from cloudfiles import CloudFiles
from cloudvolume.datasource.precomputed.sharding import ShardingSpecification
from cloudvolume.datasource.precomputed.sharding import compute_shard_params_for_hashed as cv_shard_params

from igneous.errors import IncompleteOutputError
from igneous.shards import INDEX_ENCODINGS, check_index_encoding
from igneous.validate import whole

__all__ = [
    "compute_shard_params_for_hashed",
    "MINISHARD_INDEX_ENCODINGS",
    "DATA_ENCODINGS",
    "hashed_shard_spec",
    "shard_labels_filename",
    "shard_groups",
    "shard_labels_bytes",
    "write_shard_labels",
    "read_shard_labels",
    "check_shard_membership",
    "read_shard_index",
    "check_shard_labels",
    "shown",
]

MINISHARD_INDEX_ENCODINGS = DATA_ENCODINGS = INDEX_ENCODINGS


def compute_shard_params_for_hashed(
    num_labels: int,
    shard_index_bytes: int = 2**13,
    minishard_index_bytes: int = 2**15,
    min_shards: int = 1,
) -> tuple[int, int, int]:
    """Shard geometry for label-keyed data (meshes, skeletons): ``(shard_bits, minishard_bits, 0)``.

    cloud-volume's arithmetic, which the reference uses too: a shard's fixed index holds
    ``shard_index_bytes / 16`` minishards and a minishard index ``minishard_index_bytes / 24``
    labels; shards are packed fuller when they would be at most 55 % used; ``min_shards`` is
    rounded to the nearest power of two (5 gives 4 shards) and takes bits from the minishards.
    No labels (or zero-byte indices with no labels) give ``(0, 0, 0)``.
    """
    num_labels = whole(num_labels, "num_labels", 0)
    min_shards = whole(min_shards, "min_shards", 1)
    if num_labels == 0:
        return (0, 0, 0)
    whole(shard_index_bytes, "shard_index_bytes (one minishard is 16 bytes)", 16)
    whole(minishard_index_bytes, "minishard_index_bytes (one label is 24 bytes)", 24)
    bits = cv_shard_params(num_labels, int(shard_index_bytes), int(minishard_index_bytes), min_shards)
    return tuple(int(b) for b in bits)



def hashed_shard_spec(
    num_labels: int,
    shard_index_bytes: int,
    minishard_index_bytes: int,
    min_shards: int,
    max_labels_per_shard: Optional[int],
    minishard_index_encoding: str,
    data_encoding: str = "raw",
) -> dict:
    """The ``sharding`` entry for ``num_labels`` labels (validated; InvalidParameterError).

    ``min_shards`` is raised so that shards hold at most ``max_labels_per_shard`` labels on
    average: a merge task holds one shard's worth of work, so this is the memory knob.
    """
    whole(shard_index_bytes, "shard_index_bytes", 16)
    whole(minishard_index_bytes, "minishard_index_bytes", 24)
    min_shards = whole(min_shards, "min_shards", 1)
    check_index_encoding(minishard_index_encoding)
    check_index_encoding(data_encoding, "data_encoding")
    if max_labels_per_shard is not None:
        max_labels_per_shard = whole(max_labels_per_shard, "max_labels_per_shard", 1)
        min_shards = max(min_shards, int(math.ceil(num_labels / max_labels_per_shard)))
    shard_bits, minishard_bits, _ = compute_shard_params_for_hashed(
        num_labels, int(shard_index_bytes), int(minishard_index_bytes), min_shards
    )
    return {
        "@type": "neuroglancer_uint64_sharded_v1",
        "hash": "murmurhash3_x86_128",
        "preshift_bits": 0,
        "minishard_bits": int(minishard_bits),
        "shard_bits": int(shard_bits),
        "minishard_index_encoding": minishard_index_encoding,
        "data_encoding": data_encoding,
    }


def shard_labels_filename(shard_no: str) -> str:
    """The planner's list of a shard's labels (gzip JSON)."""
    return f"{shard_no}.labels"


def shard_groups(labels: np.ndarray, spec: dict) -> dict:
    """``{shard name: sorted labels}`` for every shard of ``spec`` that has labels."""
    import shardcomputer

    groups = shardcomputer.assign_labels_to_shards(
        np.asarray(labels, dtype=np.uint64), 0, spec["shard_bits"], spec["minishard_bits"]
    )
    return {shard: sorted(int(x) for x in group) for shard, group in groups.items()}


def shard_labels_bytes(group: Sequence[int]) -> int:
    """Stored bytes of one ``{shard}.labels`` file holding ``group`` (as ``write_shard_labels`` writes it)."""
    import json

    from cloudfiles.compression import compress

    return len(compress(json.dumps(sorted(int(x) for x in group)).encode("utf8"), "gzip"))


def write_shard_labels(dir_path: str, labels: np.ndarray, spec: dict) -> list[str]:
    """Write ``{shard}.labels`` under ``dir_path`` for every shard that has labels; returns the
    shard names, sorted."""
    groups = shard_groups(labels, spec)
    CloudFiles(dir_path).put_jsons(
        ((shard_labels_filename(shard), group) for shard, group in groups.items()),
        compress="gzip",
        cache_control="no-cache",
        total=len(groups),
    )
    return sorted(groups)


def read_shard_labels(dir_path: str, shard_no: str) -> Optional[list[int]]:
    """The labels the planner assigned to ``shard_no``, sorted; None when the file is missing."""
    labels = CloudFiles(dir_path, progress=False).get_json(shard_labels_filename(shard_no))
    return None if labels is None else sorted(int(x) for x in labels)


def shown(labels: Sequence[int], n: int = 5) -> str:
    """``"1, 2, 3, 4, 5 and 7 more"``: label lists in one-line messages."""
    labels = sorted(int(x) for x in labels)
    return ", ".join(str(x) for x in labels[:n]) + (f" and {len(labels) - n} more" if len(labels) > n else "")


def check_shard_membership(spec: ShardingSpecification, labels: Sequence[int], shard_no: str) -> None:
    wrong = [x for x in labels if spec.compute_shard_location(x).shard_number != shard_no]
    if wrong:
        raise ValueError(f"labels {shown(wrong)} do not belong to shard {shard_no}; one task writes exactly one shard")


def read_shard_index(shard: bytes, spec: ShardingSpecification) -> Dict[int, Tuple[int, int]]:
    """``{label: (byte offset in the file, size)}`` decoded from a shard's indices."""
    n = 2**spec.minishard_bits
    index_len = 16 * n
    fixed = np.frombuffer(shard, dtype="<u8", count=2 * n).reshape(n, 2)
    found = {}
    for start, end in fixed.tolist():
        if start == end:
            continue
        raw = shard[index_len + start : index_len + end]
        if spec.minishard_index_encoding != "raw":
            raw = gzip.decompress(raw)
        msi = np.frombuffer(raw, dtype="<u8").reshape(3, -1)
        # offsets count from the end of the previous entry of this minishard (the first one
        # from the end of the fixed index)
        pos = 0
        for key, delta, size in zip(np.cumsum(msi[0]).tolist(), msi[1].tolist(), msi[2].tolist()):
            found[int(key)] = (index_len + pos + int(delta), int(size))
            pos += int(delta) + int(size)
    return found


def check_shard_labels(
    found: Dict[int, Tuple[int, int]], labels: Sequence[int], shard_no: str, error=IncompleteOutputError
) -> None:
    """The decoded shard holds exactly ``labels``; otherwise ``error`` naming the differences."""
    missing = sorted(set(int(x) for x in labels) - set(found))
    extra = sorted(set(found) - set(int(x) for x in labels))
    if missing or extra:
        raise error(
            f"shard {shard_no}: written shard lacks labels [{shown(missing)}] / has unexpected [{shown(extra)}]"
        )
