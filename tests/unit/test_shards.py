"""Shard format and planning arithmetic, checked against cloud-volume's own implementation
(the reader every user has) and against brute-force enumeration of Morton codes."""

from __future__ import annotations

import io
import itertools
import json

import numpy as np
import pytest
from cloudvolume.datasource.precomputed.common import compressed_morton_code
from cloudvolume.datasource.precomputed.sharding import (
    ShardingSpecification,
    ShardReader,
    synthesize_shard_file,
)
from cloudvolume.datasource.precomputed.sharding import (
    compute_shard_params_for_hashed as cv_hashed,
)
from cloudvolume.datasource.precomputed.sharding import (
    image_shard_shape_from_spec as cv_shard_shape,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from igneous.errors import InvalidParameterError
from igneous.shards import ShardWriter, Spool, chunk_codes, image_shard_shape_from_spec, morton_bits, shard_filename
from igneous.task_creation.common import compute_shard_params_for_hashed
from igneous.task_creation.image import create_sharded_image_info
from igneous.task_creation.sharding import plan_shard_pyramid, plan_shard_transfer


def spec_of(p, m, s, index="gzip", data="raw"):
    return {
        "@type": "neuroglancer_uint64_sharded_v1",
        "hash": "identity",
        "preshift_bits": p,
        "minishard_bits": m,
        "shard_bits": s,
        "minishard_index_encoding": index,
        "data_encoding": data,
    }


# -- create_sharded_image_info ------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, chunk, dtype, target, bits",
    [
        # 2048²×128 uint8, 128×128×16 chunks: the whole volume is one 512 MiB shard, 2 minishards
        ((2048, 2048, 128), (128, 128, 16), "uint8", 1e9, (10, 1, 0)),
        # the same with a 64 MB target: 16 shards of 2^7 chunks
        ((2048, 2048, 128), (128, 128, 16), "uint8", 64e6, (7, 0, 4)),
        # 100k×100k×20k: uint8 → 2 GiB shards; uint64 → 2 GiB shards of 8 MiB chunks
        ((100000, 100000, 20000), (128, 128, 64), "uint8", 3.5e9, (10, 1, 18)),
        ((100000, 100000, 20000), (128, 128, 64), "uint64", 3.5e9, (8, 0, 21)),
    ],
)
def test_sharded_image_info_examples(size, chunk, dtype, target, bits):
    spec = create_sharded_image_info(size, chunk, "raw", dtype, uncompressed_shard_bytesize=target)
    assert (spec["preshift_bits"], spec["minishard_bits"], spec["shard_bits"]) == bits
    assert spec["@type"] == "neuroglancer_uint64_sharded_v1" and spec["hash"] == "identity"
    json.dumps(spec)  # plain ints, not numpy


@settings(max_examples=150, deadline=None)
@given(
    size=st.tuples(*[st.integers(1, 5000)] * 3),
    chunk=st.tuples(*[st.sampled_from([8, 16, 32, 64, 100, 128])] * 3),
    bpv=st.sampled_from([1, 2, 4, 8, 12]),
    target_chunks=st.floats(1, 1e5),
)
def test_sharded_image_info_invariants(size, chunk, bpv, target_chunks):
    chunk_bytes = int(np.prod(chunk)) * bpv
    target = int(chunk_bytes * target_chunks)
    spec = create_sharded_image_info(size, chunk, "raw", bpv, uncompressed_shard_bytesize=target)
    grid = [-(-s // c) for s, c in zip(size, chunk)]
    t = spec["preshift_bits"] + spec["minishard_bits"]
    assert t + spec["shard_bits"] == sum(morton_bits(grid))  # every Morton bit used: no aliasing
    assert 2**t * chunk_bytes <= target  # never above the byte target
    assert 2 ** spec["preshift_bits"] * 24 <= 40000  # raw minishard index within its limit
    assert 16 * 2 ** spec["minishard_bits"] <= 8192  # shard index within its limit


def test_a_chunk_above_the_byte_target_is_a_shard_of_its_own():
    # the reference runs this (one chunk per shard) rather than refusing it
    spec = create_sharded_image_info((256,) * 3, (64,) * 3, "raw", "uint8", uncompressed_shard_bytesize=1000)
    assert spec["preshift_bits"] + spec["minishard_bits"] == 0 and spec["shard_bits"] == 6


def test_sharded_image_info_counts_channels_and_codecs():
    one = create_sharded_image_info((1024,) * 3, (64,) * 3, "raw", 1, uncompressed_shard_bytesize=2**22)
    three = create_sharded_image_info((1024,) * 3, (64,) * 3, "raw", 3, uncompressed_shard_bytesize=2**22)
    assert three["preshift_bits"] + three["minishard_bits"] < one["preshift_bits"] + one["minishard_bits"]
    for codec in ("jpeg", "png", "jxl", "fpzip", "zfpc", "kempressed"):
        assert create_sharded_image_info((256,) * 3, (64,) * 3, codec, "uint8")["data_encoding"] == "raw"
    assert create_sharded_image_info((256,) * 3, (64,) * 3, "compressed_segmentation", "uint64")["data_encoding"] == "gzip"


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(dataset_size=(2**28,) * 3, chunk_size=(64,) * 3), "66 bits"),
        (dict(dataset_size=(256,) * 3, chunk_size=(0, 64, 64)), "positive"),
        (dict(dataset_size=(256,) * 3, chunk_size=(64,) * 3, data_encoding="br"), "raw or gzip"),
    ],
)
def test_sharded_image_info_refuses(kwargs, needle):
    with pytest.raises(InvalidParameterError, match=needle):
        create_sharded_image_info(encoding="raw", dtype="uint8", **kwargs)


# -- shard geometry ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(grid=st.tuples(*[st.integers(1, 40)] * 3), data=st.data())
def test_shard_shape_equals_cloudvolume(grid, data):
    total = sum(morton_bits(grid))
    t = data.draw(st.integers(0, total))
    chunk = (8, 4, 2)
    size = [g * c for g, c in zip(grid, chunk)]
    ours = image_shard_shape_from_spec(spec_of(t, 0, total - t), size, chunk)
    theirs = cv_shard_shape(spec_of(t, 0, total - t), size, chunk)
    assert tuple(ours) == tuple(int(v) for v in theirs)
    assert all(isinstance(v, (int, np.integer)) and np.asarray(v).dtype != np.uint64 for v in ours)


@pytest.mark.parametrize("grid", [(7, 5, 3), (16, 4, 2), (1, 9, 4), (3, 1, 1)])
def test_shards_are_aligned_boxes(grid):
    """Brute force: chunks with equal ``code >> t`` are exactly the predicted boxes."""
    total = sum(morton_bits(grid))
    pts = np.array(list(itertools.product(*[range(g) for g in grid])))
    codes = chunk_codes(pts, grid)
    assert np.array_equal(codes, compressed_morton_code(pts, grid))
    for t in range(total + 1):
        n = np.array(image_shard_shape_from_spec(spec_of(t, 0, total - t), grid, (1, 1, 1)))
        predicted = [tuple(p // n) for p in pts]
        by_shard = {}
        for box, code in zip(predicted, codes):
            by_shard.setdefault(int(code) >> t, set()).add(box)
        assert all(len(boxes) == 1 for boxes in by_shard.values())
        assert len(by_shard) == len(set(predicted))


def test_shard_filename_matches_cloudvolume():
    for s, number in [(0, 0), (4, 5), (5, 0x1f), (18, 0x66F2)]:
        spec = ShardingSpecification("neuroglancer_uint64_sharded_v1", 0, "identity", 0, s)
        assert shard_filename(number, spec_of(0, 0, s)) == spec.compute_shard_location(number).shard_number + ".shard"


# -- the writer ----------------------------------------------------------------------------------


@pytest.mark.parametrize("minishard_bits", [0, 1, 2, 3])
@pytest.mark.parametrize("index", ["raw", "gzip"])
@pytest.mark.parametrize("allowance", [0, 10**9])
def test_writer_equals_cloudvolume(minishard_bits, index, allowance):
    rng = np.random.default_rng(minishard_bits)
    spec = spec_of(2, minishard_bits, 0, index=index)
    # contiguous keys: cloud-volume then emits minishards in ascending order too, so bytes compare
    payloads = {int(k): rng.bytes(int(rng.integers(0, 60))) for k in range(4 * 2**minishard_bits * 3)}
    spool = Spool(allowance)
    for k, v in payloads.items():
        spool.add((0, k), v)
    out = io.BytesIO()
    ShardWriter(spec).write(spool, 0, list(payloads), out)
    assert out.getvalue() == synthesize_shard_file(ShardingSpecification.from_dict(spec), dict(payloads))
    assert not spool.memory and not spool.on_disk


@pytest.mark.parametrize("count", [1, 40])
def test_writer_sparse_keys_read_back(count):
    rng = np.random.default_rng(count)
    spec = spec_of(3, 3, 0)
    payloads = {int(k): rng.bytes(int(rng.integers(1, 60))) for k in rng.choice(4000, size=count, replace=False)}
    spool = Spool(50)  # most payloads spill to the scratch file
    for k, v in payloads.items():
        spool.add((1, k), v)
    out = io.BytesIO()
    ShardWriter(spec).write(spool, 1, list(payloads), out)
    reader = ShardReader(None, None, ShardingSpecification.from_dict(spec))
    assert reader.disassemble_shard(out.getvalue()) == payloads
    spool.close()


# -- label-keyed shards --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels, min_shards, expected",
    [(100_000, 1, (0, 7, 0)), (100_000, 16, (4, 3, 0)), (10**7, 1, (4, 9, 0)), (10**6, 1, (1, 9, 0)),
     (10**8, 1, (8, 9, 0)), (0, 4, (0, 0, 0)), (5, 5, (2, 0, 0)), (1000, 1000, (10, 0, 0))],
)
def test_hashed_params_table(labels, min_shards, expected):
    assert compute_shard_params_for_hashed(labels, min_shards=min_shards) == expected


@pytest.mark.parametrize("labels", [1, 500, 1366, 40_000, 699_051, 3_000_000, 10**9])
@pytest.mark.parametrize("min_shards", [1, 2, 3, 5, 8, 64, 1000])
def test_hashed_params_equal_cloudvolume(labels, min_shards):
    ours = compute_shard_params_for_hashed(labels, min_shards=min_shards)
    assert ours == tuple(int(v) for v in cv_hashed(labels, min_shards=min_shards))


@pytest.mark.parametrize("kwargs", [dict(num_labels=-1), dict(num_labels=5, min_shards=0),
                                    dict(num_labels=5, shard_index_bytes=8)])
def test_hashed_params_refuse(kwargs):
    with pytest.raises(InvalidParameterError):
        compute_shard_params_for_hashed(**kwargs)


# -- plans own whole shards ----------------------------------------------------------------------


def _tiles(size, shape):
    return [range(0, s, sh) for s, sh in zip(size, shape)]


@settings(max_examples=60, deadline=None)
@given(
    size=st.tuples(st.integers(1, 700), st.integers(1, 700), st.integers(1, 200)),
    chunk=st.sampled_from([(16, 16, 8), (32, 32, 4), (16, 8, 16)]),
    factor=st.sampled_from([(2, 2, 1), (2, 2, 2)]),
    n=st.integers(1, 3),
    memory=st.sampled_from([3e5, 2e6, 5e7]),
)
def test_pyramid_plan_owns_whole_shards(size, chunk, factor, n, memory):
    """Every level-k shard lies inside exactly one task, or the plan is refused with advice."""
    f = np.array(factor)
    sizes = [tuple(int(v) for v in -(-np.array(size) // f**k)) for k in range(1, n + 1)]
    try:
        plan = plan_shard_pyramid(size, chunk, sizes, chunk, 0, factor, 1, memory, ["gzip"] * n)
    except InvalidParameterError as err:
        assert "num_mips" in str(err) and "memory_target" in str(err)
        return
    assert plan.peak_bytes <= memory
    task = np.array(plan.task_shape)
    for k, level in enumerate(plan.levels, start=1):
        footprint = task // f**k
        shard = np.array(level.shard_shape)
        for d in range(3):
            covered = task[d] >= size[d]
            assert covered or footprint[d] % shard[d] == 0, (k, d, footprint, shard)
        # and the spec really gives those shards
        grid = [-(-s // c) for s, c in zip(level.size, chunk)]
        assert level.spec["preshift_bits"] + level.spec["minishard_bits"] + level.spec["shard_bits"] == sum(
            morton_bits(grid)
        )


def test_transfer_plan_takes_shards_of_the_memory_target_and_warns_when_a_task_needs_more(caplog):
    # shards are memory_target bytes, as the reference lays them out: 2^floor(log2(target / chunk)) chunks
    big = plan_shard_transfer((2048, 2048, 128), (128, 128, 16), 0, 1, "raw", 1e9)
    small = plan_shard_transfer((2048, 2048, 128), (128, 128, 16), 0, 1, "raw", 3e7)
    assert big.num_tasks == 1 and big.peak_bytes <= 1e9  # 2048 chunks of 256 KiB in one 512 MiB shard
    # 3e7 / 256 KiB → 64 chunks: Morton bits x,y,z,x,y,z → a 4×4×4-chunk box; 16×16×8 chunks → 4×4×2 shards
    assert small.levels[0].shard_chunks == (4, 4, 4) and small.num_tasks == 4 * 4 * 2
    # a 1 MB target: 2^1 chunks per shard, but streaming one needs more; it runs with one warning
    caplog.clear()
    tiny = plan_shard_transfer((2048, 2048, 128), (128, 128, 16), 0, 1, "raw", 1e6)
    assert tiny.levels[0].shard_chunks == (2, 1, 1) and tiny.peak_bytes > 1e6
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert f"{tiny.peak_bytes:,}" in caplog.records[0].getMessage()
