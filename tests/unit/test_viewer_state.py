"""Neuroglancer states (igneous.viewer) and the layer server's names: pure rules, no browser."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from igneous.serving import mount_names
from igneous.viewer import (
    ALL_CODECS_NEUROGLANCER,
    DEMO_NEUROGLANCER,
    RGB_SHADER,
    LayerSource,
    default_viewer,
    dimensions,
    layer_state,
    needs_all_codecs,
    state_url,
    viewer_state,
)


def info(layer_type="image", channels=1, encodings=("raw",), resolution=(4, 4, 40), **extra) -> dict:
    scales = [
        {"resolution": [r * 2**i if a < 2 else r for a, r in enumerate(resolution)], "encoding": enc, "key": str(i)}
        for i, enc in enumerate(encodings)
    ]
    return {"type": layer_type, "num_channels": channels, "data_type": "uint8", "scales": scales, **extra}


def test_dimensions_are_mip_0_resolution_in_metres():
    dims = dimensions(info(resolution=(8, 6, 45), encodings=("raw", "raw")))
    assert dims == {"x": [8e-9, "m"], "y": [6e-9, "m"], "z": [45e-9, "m"]}


@pytest.mark.parametrize(
    "extra, subsources",
    [
        ({}, {"default": True, "bounds": True}),  # no meshes or skeletons yet
        ({"mesh": "mesh_mip_0_err_40"}, {"default": True, "bounds": True, "mesh": True}),
        ({"mesh": "m", "skeletons": "s"}, {"default": True, "bounds": True, "mesh": True, "skeletons": True}),
    ],
)
def test_segmentation_layer_brings_its_mesh_and_skeletons(extra, subsources):
    layer = layer_state(LayerSource(info("segmentation", **extra), "http://localhost:1/seg", "seg"))
    assert layer["type"] == "segmentation" and layer["name"] == "seg"
    assert layer["source"] == {
        "url": "precomputed://http://localhost:1/seg",
        "subsources": subsources,
        "enableDefaultSubsources": False,
    }


def test_three_channels_get_the_rgb_shader_one_does_not():
    rgb = layer_state(LayerSource(info(channels=3), "gs://b/rgb", "rgb"))
    grey = layer_state(LayerSource(info(channels=1), "gs://b/em", "em"))
    assert rgb["shader"] == RGB_SHADER and "getDataValue(2)" in RGB_SHADER
    assert "shader" not in grey
    assert rgb["source"] == "precomputed://gs://b/rgb" and rgb["type"] == "image"


@pytest.mark.parametrize("codec", ["crackle", "zfpc", "kempressed", "fpzip"])
def test_codecs_only_the_all_codecs_build_reads(codec):
    layer = info(encodings=("raw", codec))  # any scale counts, not only mip 0
    assert needs_all_codecs(layer)
    assert default_viewer([info(), layer]) == ALL_CODECS_NEUROGLANCER


@pytest.mark.parametrize("codec", ["raw", "jpeg", "png", "jxl", "compressed_segmentation", "compresso"])
def test_codecs_the_demo_viewer_reads(codec):
    assert not needs_all_codecs(info(encodings=(codec,)))
    assert default_viewer([info(encodings=(codec,))]) == DEMO_NEUROGLANCER


def test_state_url_round_trips_and_keeps_layers_in_order():
    sources = [LayerSource(info(), "http://localhost:9/em", "em"), LayerSource(info("segmentation"), "s3://b/s", "s")]
    state = viewer_state(sources, position=(1, 2, 3))
    url = state_url(state, "http://127.0.0.1:8000/v/abc/")
    base, _, fragment = url.partition("#!")
    assert base == "http://127.0.0.1:8000/v/abc/"
    decoded = json.loads(urllib.parse.unquote(fragment))
    assert decoded == state
    assert [layer["name"] for layer in decoded["layers"]] == ["em", "s"]
    assert decoded["position"] == [1.0, 2.0, 3.0] and decoded["layout"] == "4panel"
    assert " " not in url and "{" not in url  # fully escaped: survives terminals and shells


def test_no_position_lets_neuroglancer_centre_and_no_layers_is_refused():
    assert "position" not in viewer_state([LayerSource(info(), "gs://b/a", "a")])
    with pytest.raises(ValueError):
        viewer_state([])


def test_mount_names_are_short_unique_and_url_safe():
    assert mount_names(["file:///d/em", "file:///e/em", "gs://b/em/", "file:///x/a b"]) == ["em", "em-2", "em-3", "a_b"]
