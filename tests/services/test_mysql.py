"""Spatial index exported to a real MariaDB (started by the ``mariadb`` fixture on loopback)
answers CloudVolume's spatial-index queries exactly as the ``.spatial`` files do, labels ≥ 2^63
included (which sqlite cannot store)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from igneous.errors import InvalidParameterError
from igneous.task_creation.spatial_index import export_spatial_index_db
from igneous_cli import main
from tests.mesh.conftest import CROP_B, sample_crop  # noqa: F401  (session fixture)
from tests.mesh.test_spatial_index import big_labels, index_layer, spatial_answers


@pytest.fixture(scope="module")
def crop(sample_crop):  # noqa: F811
    return sample_crop(*CROP_B)


def test_the_fixture_is_a_real_mariadb(mysql_db):
    import mysql.connector
    from cloudvolume.datasource.precomputed.spatial_index import parse_db_path

    p = parse_db_path(mysql_db)
    conn = mysql.connector.connect(host=p["hostname"], port=p["port"], user=p["username"], password=p["password"])
    cur = conn.cursor()
    cur.execute("SELECT VERSION()")
    assert "MariaDB" in cur.fetchone()[0]
    conn.close()


@pytest.mark.parametrize("parallel", [1, 2])
def test_mysql_answers_like_the_files_with_labels_beyond_2_63(layer, crop, mysql_db, parallel):
    data = big_labels(crop[:64, :64, :48])
    path = index_layer(layer, data)
    export_spatial_index_db(path, mysql_db, parallel=parallel)
    files = spatial_answers(path)
    assert files["labels"] and min(files["labels"]) >= 2**63
    assert spatial_answers(path, mysql_db) == files


def test_a_second_export_replaces_the_first(layer, crop, mysql_db):
    first = index_layer(layer, crop[:48, :48, :32], name="first")
    export_spatial_index_db(first, mysql_db)
    second = index_layer(layer, big_labels(crop[:48, :48, :32]), name="second")
    export_spatial_index_db(second, mysql_db)
    assert spatial_answers(second, mysql_db) == spatial_answers(second)


def test_cli_db_with_threads(layer, crop, mysql_db):
    path = index_layer(layer, crop[:64, :64, :48])
    result = CliRunner().invoke(main, ["-p", "2", "mesh", "spatial-index", "db", path, mysql_db])
    assert result.exit_code == 0, result.output
    assert "started thread" not in result.output
    assert "igneous-test" not in result.output  # the password is not echoed
    assert spatial_answers(path, mysql_db) == spatial_answers(path)


def test_wrong_password_is_one_line_without_the_password(layer, crop, mariadb):
    path = index_layer(layer, crop[:48, :48, :32])
    bad = mariadb.replace(":igneous-test@", ":wrong-secret@") + "/si_denied"
    with pytest.raises(InvalidParameterError, match="Access denied") as err:
        export_spatial_index_db(path, bad)
    assert "wrong-secret" not in str(err.value) and "***" in str(err.value)
    result = CliRunner().invoke(main, ["mesh", "spatial-index", "db", path, bad])
    assert result.exit_code == 2 and "Access denied" in result.output and "wrong-secret" not in result.output


def test_database_names_cloudvolume_cannot_create_are_refused(layer, mariadb):
    path = layer(np.ones((8, 8, 8), np.uint32), name="seg")
    with pytest.raises(InvalidParameterError, match="letters, digits and _"):
        export_spatial_index_db(path, f"{mariadb}/bad-name")


def test_mysql_url_without_host_is_refused(layer):
    path = layer(np.ones((8, 8, 8), np.uint32), name="seg")
    with pytest.raises(InvalidParameterError, match="needs a host"):
        export_spatial_index_db(path, "mysql:///db")
