"""Planning spatial indices (SPEC §2.2 ``create_spatial_index_mesh_tasks``; the skeleton
planner reuses :func:`spatial_index_grid`) and their export to a SQL database
(``mesh|skeleton spatial-index db``, design-meshing §3.10).

The ``.spatial`` files tell, for each task box, which labels it holds and their bounding
boxes in nm. Merges use them to find a label's fragments and to check that forging finished;
Neuroglancer-side tools query them by region. For datasets with millions of index files a
database (sqlite, or MySQL for labels ≥ 2^63 and parallel loading) answers the sharded
merge's "which files hold these labels" much faster than reading every file.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from typing import Optional, Sequence

import numpy as np
from cloudvolume import CloudVolume
from cloudvolume.datasource.precomputed.spatial_index import parse_db_path
from cloudvolume.lib import getprecision

from igneous import meshes, spatial
from igneous.errors import InvalidParameterError
from igneous.layerfiles import read_sub_info
from igneous.task_creation.checks import check_same_grid, open_segmentation, refuse_index_of_unfinished_forge
from igneous.task_creation.common import GridTasks, as_triple, record_provenance, task_kwargs
from igneous.tasks.spatial_index import SpatialIndexTask
from igneous.volumes import normalize_compress

__all__ = [
    "create_spatial_index_mesh_tasks",
    "spatial_index_grid",
    "export_spatial_index_db",
    "check_spatial_db",
    "all_labels",
    "DB_SCHEMES",
]

log = logging.getLogger(__name__)

DB_SCHEMES = ("sqlite", "mysql")
MAX_INDEX_FILENAME = 100  # CloudVolume's index_files.filename is VARCHAR(100)
SQLITE_MAX_LABEL = 2**63 - 1


# What differs between the two kinds of forged output: the layer info key naming the
# sub-directory, and CloudVolume's source holding its spatial index.
KINDS = {"mesh": ("mesh", "mesh"), "skeleton": ("skeletons", "skeleton")}


def _index_of(vol: CloudVolume, kind: str):
    return getattr(vol, KINDS[kind][1]).spatial_index


def create_spatial_index_mesh_tasks(
    cloudpath: str,
    shape: Sequence[int] = (448, 448, 448),
    mip: int = 0,
    fill_missing: bool = False,
    compress="gzip",
    mesh_dir: Optional[str] = None,
):
    """(Re)build the mesh ``.spatial`` files of a segmentation, one ``SpatialIndexTask`` per box.

    Writes ``spatial_index {resolution, chunk_size = shape·resolution}`` and ``chunk_size``
    into ``{mesh_dir}/info`` (creating a legacy mesh info if there is none) before returning
    the tasks. When meshes were already forged, ``shape`` and ``mip`` must be the forge's: the
    sharded merge turns ``.spatial`` names into ``.frags`` names, so both grids must agree.

    Args:
        cloudpath: a segmentation layer.
        shape: task box in voxels at ``mip`` (default 448³, the forge's default).
        mip: the level the meshes are (or will be) forged at.
        fill_missing: treat missing chunks as background.
        compress: transport compression of the ``.spatial`` files (none/gzip/br/zstd).
        mesh_dir: mesh directory (default: the info's ``mesh``, else ``mesh_mip_{mip}_err_40``).

    Returns:
        A lazy, sized iterator of ``SpatialIndexTask``; provenance is recorded when it is exhausted.
    """
    vol = open_segmentation(cloudpath, mip)
    shape = as_triple(shape, "shape")
    compress = normalize_compress(compress, "raw") if compress is not None else None
    mesh_dir = meshes.resolve_mesh_dir(vol.info, mesh_dir) or meshes.default_mesh_dir(mip, 40)
    existing = meshes.read_mesh_info(cloudpath, mesh_dir) or {}
    check_same_grid(existing, shape, mip, mesh_dir)
    refuse_index_of_unfinished_forge(vol, cloudpath, mesh_dir, existing)

    resolution = vol.info["scales"][mip]["resolution"]
    new_info = dict(existing)
    new_info.setdefault("@type", meshes.LEGACY_MESH_TYPE)
    new_info["mip"] = int(mip)
    new_info["chunk_size"] = [int(s) for s in shape]
    new_info["spatial_index"] = meshes.legacy_mesh_info(mip, shape, resolution)["spatial_index"]
    if "mesh" not in vol.info:
        vol.info["mesh"] = mesh_dir
        vol.commit_info()
    if new_info != existing:
        meshes.write_mesh_info(cloudpath, mesh_dir, new_info)

    return spatial_index_grid(vol, cloudpath, shape, mip, fill_missing, compress, mesh_dir)


def spatial_index_grid(
    vol: CloudVolume, cloudpath: str, shape, mip: int, fill_missing: bool, compress, subdir: str
) -> GridTasks:
    """The ``SpatialIndexTask`` grid over the layer at ``mip`` writing into ``subdir``."""
    precision = max(getprecision(r) for r in vol.info["scales"][mip]["resolution"])
    kwargs = task_kwargs(
        cloudpath=cloudpath,
        subdir=subdir,
        precision=precision,
        mip=mip,
        fill_missing=bool(fill_missing),
        compress=compress or None,
    )
    finish = functools.partial(record_provenance, cloudpath, "SpatialIndexTask", {**kwargs, "shape": shape})
    return GridTasks(vol.meta.bounds(mip), shape, functools.partial(SpatialIndexTask, **kwargs), finish)


def _check_database(database: str) -> dict:
    try:
        parsed = parse_db_path(str(database))
    except ValueError as err:
        raise InvalidParameterError(f"database {database!r} is not a valid URL ({err})") from None
    if parsed["scheme"] not in DB_SCHEMES:
        raise InvalidParameterError(
            f"database must be sqlite://FILE (or a file path) or mysql://USER:PW@HOST[:PORT]/DB; got {database!r}"
        )
    if parsed["scheme"] == "sqlite" and not parsed["path"]:
        raise InvalidParameterError("sqlite:// needs a file name, e.g. sqlite://spatial.db")
    if parsed["scheme"] == "mysql" and not parsed["hostname"]:
        raise InvalidParameterError(
            f"mysql:// needs a host, e.g. mysql://user:pw@127.0.0.1/db; got {_redact(database)}"
        )
    if parsed["scheme"] == "mysql" and re.search(r"[^A-Za-z0-9_]", parsed["path"]):
        raise InvalidParameterError(
            f"the MySQL database name may hold only letters, digits and _; got {parsed['path']!r}"
        )
    return parsed


def _redact(database: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(database))


def _check_mysql_server(database: str) -> None:
    """Connect once before anything is written: bad host or credentials are one clear line."""
    from cloudvolume.datasource.precomputed.spatial_index import connect

    try:
        connect(database, use_database=False).close()
    except ImportError:
        raise InvalidParameterError(
            "mysql:// needs the MySQL driver: pip install 'igneous[mysql]' (mysql-connector-python)"
        ) from None
    except Exception as err:  # the driver's errors: access denied, unknown host, refused, …
        raise InvalidParameterError(f"cannot connect to {_redact(database)}: {err}") from None


def export_spatial_index_db(
    cloudpath: str,
    database: str,
    progress: bool = False,
    allow_missing: bool = False,
    parallel: int = 1,
    kind: str = "mesh",
) -> None:
    """Load a layer's mesh (``kind='mesh'``) or skeleton (``kind='skeleton'``) spatial index
    into a SQL database (``cv.mesh.spatial_index.to_sql``).

    Tables ``index_files(id, filename)`` and ``file_lookup(label, fid)`` are dropped and
    rebuilt. Point readers at it with ``CloudVolume(path, spatial_index_db=database)`` or the
    sharded merge's ``spatial_index_db``.

    sqlite stores signed 64-bit integers only and takes one writer (``parallel`` is forced to
    1); MySQL (``mysql://user:pw@host[:port]/db``, driver ``mysql-connector-python``) stores
    any uint64 label, loads with ``parallel`` threads, and needs the right to create the database.

    Raises:
        InvalidParameterError: no mesh spatial index, an unsupported database URL, missing
            ``.spatial`` files (unless ``allow_missing``), or labels ≥ 2^63 bound for sqlite.
    """
    from cloudvolume.datasource.precomputed.spatial_index import SpatialIndexGapError

    parsed = _check_database(database)
    vol = open_segmentation(cloudpath, 0)
    key = KINDS[kind][0]
    subdir = str(vol.info[key]).strip("/") if vol.info.get(key) else None
    info = read_sub_info(cloudpath, subdir) if subdir else None
    if not info or not info.get("spatial_index") or _index_of(vol, kind) is None:
        raise InvalidParameterError(
            f"{cloudpath} has no {kind} spatial index; run `igneous {kind} spatial-index create` "
            f"(or forge with --spatial-index) first"
        )
    mip = int(info.get("mip", 0))
    names = spatial.expected_spatial_names(vol.meta.bounds(mip), info)
    too_long = [n for n in names if len(n) > MAX_INDEX_FILENAME]
    if too_long:
        raise InvalidParameterError(
            f"spatial index file names longer than {MAX_INDEX_FILENAME} characters cannot be stored "
            f"(e.g. {too_long[0]}); rebuild the index with a larger shape"
        )
    missing, total = spatial.missing_spatial_boxes(cloudpath, subdir, vol.meta.bounds(mip), info)
    if missing and not allow_missing:
        raise InvalidParameterError(
            f"{len(missing)} of {total} .spatial files are missing (e.g. {missing[0]}); run "
            f"`igneous {kind} spatial-index create` or pass --allow-missing"
        )
    if parsed["scheme"] == "mysql":
        _check_mysql_server(database)

    index = _index_of(vol, kind)
    if parsed["scheme"] == "sqlite":
        # An insert thread that hits such a label dies and to_sql then waits forever: look first.
        big = _first_label_beyond(index, SQLITE_MAX_LABEL, allow_missing)
        if big is not None:
            raise InvalidParameterError(
                f"sqlite cannot store labels >= 2^63 (e.g. {big}); use a mysql://user:pw@host/db database instead"
            )
    parallel = 1 if parsed["scheme"] == "sqlite" else max(1, int(parallel))
    try:
        # CloudVolume's insert threads print "started thread …" to stdout; the CLI owns stdout.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            index.to_sql(database, progress=progress, allow_missing=allow_missing, parallel=parallel)
    except SpatialIndexGapError as err:
        raise InvalidParameterError(f"a .spatial file is missing ({err}); pass --allow-missing to skip it") from None
    record_missing_files(database, missing)


MISSING_TABLE = "igneous_missing_files"


def _bind(database: str) -> str:
    return "?" if parse_db_path(database)["scheme"] == "sqlite" else "%s"


def record_missing_files(database: str, missing: Sequence[str]) -> None:
    """Note in the database which ``.spatial`` files did not exist at export (``--allow-missing``).

    CloudVolume's tables cannot tell a missing file from an empty one, so without this a
    database exported before the forge finished would silently drop labels from a merge.
    """
    from cloudvolume.datasource.precomputed.spatial_index import connect

    conn = connect(database)
    try:
        cur = conn.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {MISSING_TABLE}")
        cur.execute(f"CREATE TABLE {MISSING_TABLE} (filename VARCHAR({MAX_INDEX_FILENAME}) NOT NULL)")
        if missing:
            cur.executemany(f"INSERT INTO {MISSING_TABLE} (filename) VALUES ({_bind(database)})", [(n,) for n in missing])
        conn.commit()
    finally:
        conn.close()


def files_missing_at_export(database: str) -> Optional[list[str]]:
    """The ``.spatial`` files absent when ``database`` was exported; None if it was not
    exported by Igneous (no record)."""
    from cloudvolume.datasource.precomputed.spatial_index import connect

    conn = connect(database)
    try:
        cur = conn.cursor()
        try:
            cur.execute(f"SELECT filename FROM {MISSING_TABLE}")
        except Exception:
            return None
        return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def _first_label_beyond(index, limit: int, allow_missing: bool) -> Optional[int]:
    """The first label in any ``.spatial`` file that exceeds ``limit``, else None."""
    import simdjson

    parser = simdjson.Parser()
    digits = len(str(limit))
    for batch in index.fetch_all_index_files(allow_missing=allow_missing, progress=False):
        for content in batch.values():
            if content is None:
                continue
            doc = parser.parse(content)
            big = next((int(k) for k in doc.keys() if len(k) >= digits and int(k) > limit), None)
            del doc  # simdjson refuses to reuse a parser while a document is alive
            if big is not None:
                return big
    return None


def check_spatial_db(spatial_index_db: Optional[str], kind: str = "mesh") -> None:
    """The database must exist and index every ``.spatial`` file of the finished forge: one
    exported before the forge finished would silently drop labels and fragments."""
    if not spatial_index_db:
        return
    from cloudvolume.datasource.precomputed.spatial_index import connect

    try:
        conn = connect(spatial_index_db)
    except ImportError as err:
        raise InvalidParameterError(
            f"spatial_index_db {spatial_index_db} needs a driver that is not installed ({err}); "
            f"for mysql:// run pip install 'igneous[mysql]'"
        ) from None
    except Exception as err:
        raise InvalidParameterError(f"cannot open spatial_index_db {spatial_index_db}: {err}") from None
    try:
        cur = conn.cursor()
        cur.execute("select count(*) from file_lookup")
        cur.fetchall()
    except Exception:
        raise InvalidParameterError(
            f"spatial_index_db {spatial_index_db} has no file_lookup table: run `igneous {kind} spatial-index db` first"
        ) from None
    finally:
        conn.close()
    missing = files_missing_at_export(spatial_index_db)
    if missing:
        raise InvalidParameterError(
            f"spatial_index_db {spatial_index_db} was exported while {len(missing)} forge boxes had no .spatial "
            f"file (e.g. {', '.join(missing[:3])}): export it again with `igneous {kind} spatial-index db`"
        )


def all_labels(cloudpath: str, spatial_index_db: Optional[str], info: dict, kind: str = "mesh") -> np.ndarray:
    """Every label of the forge, sorted, from the spatial index (the database when given)."""
    from cloudvolume.exceptions import SpatialIndexGapError

    vol = CloudVolume(cloudpath, spatial_index_db=spatial_index_db, progress=False, cdn_cache=False)
    index = _index_of(vol, kind)
    mip = int(info["mip"])
    bounds = vol.meta.bounds(mip) * np.asarray(vol.meta.resolution(mip))
    try:
        labels = index.query(bounds)
    except SpatialIndexGapError as err:
        raise InvalidParameterError(f"the spatial index has a gap: {err}") from None
    return np.asarray(sorted(int(x) for x in labels), dtype=np.uint64)
