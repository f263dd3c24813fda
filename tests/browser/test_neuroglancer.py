"""What Igneous writes, as a person sees it in Neuroglancer (issue 14).

Every test builds layers with the real commands, serves them with the server `igneous view`
uses, shows them in the bundled Neuroglancer client in headless Chromium and asserts on the
screenshot's pixels. Screenshots of the last run are in tests/artifacts/.

Geometry: in a one-panel ``xy`` view of W×H pixels at ``crossSectionScale`` s, pixel (row r,
column c) shows voxel (x, y) = position + ((c + ½ − W/2)·s, (r + ½ − H/2)·s) (nearest voxel), so
with s = 1 and an integer position each pixel is exactly one voxel.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from cloudfiles import CloudFiles
from cloudvolume import CloudVolume
from taskqueue import LocalTaskQueue

import igneous.task_creation as tc
from igneous.viewer import LayerSource, state_url, viewer_state
from tests.conftest import REPO, make_layer

SIZE = (256, 256)  # screenshot width, height
# The 3-D view inside a whole-window screenshot: below the tool and layer bars, right of the
# x/y/z legend and above the status line (all of which have coloured text).
WINDOW_VIEW = (slice(60, -20), slice(40, None))
BLACK_VIEW = {
    "showAxisLines": False,
    "showScaleBar": False,
    "showDefaultAnnotations": False,
    "crossSectionBackgroundColor": "#000000",
    "projectionBackgroundColor": "#000000",
}


def run(tasks) -> None:
    LocalTaskQueue(parallel=1, progress=False).insert_all(tasks)


def xy_state(sources, position, scale: float, **extra) -> dict:
    state = viewer_state(sources, position=position, layout="xy")
    state.update(BLACK_VIEW, crossSectionScale=scale, **extra)
    return state


def voxel_grid(position, scale: float, size=SIZE):
    """(x, y) voxel indices shown by every pixel of an xy view (see the module docstring)."""
    w, h = size
    cols = np.floor(position[0] + (np.arange(w) + 0.5 - w / 2) * scale).astype(int)
    rows = np.floor(position[1] + (np.arange(h) + 0.5 - h / 2) * scale).astype(int)
    return np.meshgrid(cols, rows)  # each H×W


def source(path: str, name: str, url: str) -> LayerSource:
    return LayerSource(CloudFiles(path).get_json("info"), url, name)


# -- an image pyramid --------------------------------------------------------------------------

# 512×512×32 uint8: x < 256 has stripes one voxel wide (0 on even x, 200 on odd x), which every
# pyramid level averages to exactly 100, while sampling mip 0 at a stride of 2^k voxels would show
# only 0s or only 200s; x ≥ 256 is 60 for y < 256 and 180 below.
IMG_SHAPE = (512, 512, 32)


def pyramid_image() -> np.ndarray:
    data = np.zeros(IMG_SHAPE, dtype=np.uint8)
    data[1:256:2, :, :] = 200
    data[256:, :256, :] = 60
    data[256:, 256:, :] = 180
    return data


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    """file:// paths of the image with a 4-level pyramid, and of its sharded copy."""
    root = tmp_path_factory.mktemp("pyramid")
    src = make_layer(f"file://{root}/img", pyramid_image(), resolution=(8, 8, 40), chunk_size=(64, 64, 8))
    run(tc.create_downsampling_tasks(src, num_mips=4))
    sharded = f"file://{root}/img-sharded"
    run(tc.create_image_shard_transfer_tasks(src, sharded, memory_target=int(1e8)))
    run(tc.create_image_shard_downsample_tasks(sharded, num_mips=3, memory_target=int(2e8)))
    return src, sharded


def test_image_cross_section_shows_the_voxels(ng, serve, pyramid):
    src, _ = pyramid
    server = serve({"img": src})
    position = (256, 256, 16)
    shot = ng.show(xy_state([source(src, "img", server.url("img"))], position, 1.0), "image_mip0")
    xs, ys = voxel_grid(position, 1.0)
    expected = pyramid_image()[xs, ys, 16]
    # Each pixel is its voxel's grey value, stripes included: Neuroglancer read mip 0.
    assert np.array_equal(shot[..., 0], expected), np.argwhere(shot[..., 0] != expected)[:5]
    assert np.array_equal(shot[..., 0], shot[..., 1]) and np.array_equal(shot[..., 1], shot[..., 2])


def test_zoomed_out_uses_a_lower_mip_with_the_right_mean(ng, serve, pyramid):
    src, _ = pyramid
    server = serve({"img": src})
    scale = 8.0  # 8 voxels per pixel: the 512² image is 64×64 pixels
    position = (256, 256, 16)
    shot = ng.show(xy_state([source(src, "img", server.url("img"))], position, scale), "image_zoomed_out")
    xs, ys = voxel_grid(position, scale)
    inside = (xs >= 0) & (xs < 512) & (ys >= 0) & (ys < 512)
    grey = shot[..., 0].astype(float)
    stripes = inside & (xs < 256)
    # Averaged levels show the stripes as a flat 100; mip 0 at this stride would be all 0 or all 200.
    assert abs(grey[stripes].mean() - 100) < 3 and grey[stripes].std() < 6, (grey[stripes].mean(), grey[stripes].std())
    assert abs(grey[inside].mean() - pyramid_image()[..., 16].mean()) < 3
    assert np.all(grey[~inside] == 0)
    keys = {r.path.split("/")[0] for r in server.requests if "/" in r.path}
    assert keys and "8_8_40" not in keys, keys  # only downsampled scales were fetched


def test_sharded_pyramid_zoomed_out_renders_like_the_unsharded_one(ng, serve, pyramid):
    src, sharded = pyramid
    server = serve({"img": src, "sharded": sharded})
    position, scale = (256, 256, 16), 8.0
    plain = ng.show(xy_state([source(src, "img", server.url("img"))], position, scale), "pyramid_unsharded_zoomed")
    shards = ng.show(xy_state([source(sharded, "sharded", server.url("sharded"))], position, scale),
                     "pyramid_sharded_zoomed")  # fmt: skip
    assert np.array_equal(plain, shards)
    keys = {r.path.split("/")[0] for r in server.requests if r.mount == "sharded" and r.status == 206}
    assert keys and "8_8_40" not in keys, keys  # the sharded levels were read, not mip 0


def test_sharded_copy_renders_like_its_source(ng, serve, pyramid):
    src, sharded = pyramid
    server = serve({"img": src, "sharded": sharded})
    position = (250, 262, 16)
    plain = ng.show(xy_state([source(src, "img", server.url("img"))], position, 1.0), "image_unsharded")
    copy = ng.show(xy_state([source(sharded, "sharded", server.url("sharded"))], position, 1.0), "image_sharded")
    assert np.array_equal(plain, copy)
    assert plain[..., 0].std() > 50  # not two blank pictures
    ranges = [r for r in server.requests if r.mount == "sharded" and r.status == 206]
    assert ranges and all(r.path.endswith(".shard") for r in ranges)  # read from shard files


# -- a segmentation and its meshes -------------------------------------------------------------

# 128×128×64 uint64 at 8 nm: a ball (7), a box (42) and a slab-shaped ellipsoid (a label id
# above 2^32, 1000000007), each spanning several 64³ forge tasks.
SEG_SHAPE = (128, 128, 64)
BALL, BOX, BIG = 7, 42, 1_000_000_007
COLORS = {BALL: (255, 0, 0), BOX: (0, 255, 0), BIG: (0, 0, 255)}


def segmentation() -> np.ndarray:
    x, y, z = np.meshgrid(*(np.arange(n) for n in SEG_SHAPE), indexing="ij")
    seg = np.zeros(SEG_SHAPE, dtype=np.uint64)
    seg[(x - 40) ** 2 + (y - 40) ** 2 + (z - 32) ** 2 < 26**2] = BALL
    seg[76:116, 12:60, 8:56] = BOX
    seg[((x - 64) / 50.0) ** 2 + ((y - 98) / 18.0) ** 2 + ((z - 32) / 22.0) ** 2 < 1] = BIG
    return seg


def hex_color(rgb) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


def seg_layer(state: dict, selected) -> dict:
    layer = state["layers"][0]
    layer.update(
        segments=[str(s) for s in selected],
        segmentColors={str(k): hex_color(v) for k, v in COLORS.items()},
        selectedAlpha=1.0,
        notSelectedAlpha=0.0,
        objectAlpha=1.0,
    )
    return state


@pytest.fixture(scope="module")
def meshed(tmp_path_factory):
    """Two copies of the segmentation: legacy meshes, and sharded multi-resolution meshes."""
    root = tmp_path_factory.mktemp("seg")
    seg = segmentation()
    kwargs = dict(resolution=(8, 8, 8), chunk_size=(64, 64, 32), encoding="compressed_segmentation")
    legacy = make_layer(f"file://{root}/legacy", seg, **kwargs)
    run(tc.create_meshing_tasks(legacy, 0, shape=(64, 64, 64)))
    run(tc.create_mesh_manifest_tasks(legacy))
    sharded = make_layer(f"file://{root}/sharded", seg, **kwargs)
    run(tc.create_meshing_tasks(sharded, 0, shape=(64, 64, 64), sharded=True))
    run(tc.create_sharded_multires_mesh_tasks(sharded, num_lod=1))
    return legacy, sharded


def colour_masks(shot: np.ndarray) -> dict:
    """label → pixels whose colour is that label's (shading changes brightness, not the hue)."""
    rgb = shot.astype(int)
    lit = rgb.max(axis=2) > 30
    out = {}
    for label, colour in COLORS.items():
        channel = int(np.argmax(colour))
        others = [c for c in range(3) if c != channel]
        out[label] = lit & (rgb[..., channel] > 2 * rgb[..., others].max(axis=2))
    return out


def test_segmentation_cross_section_shows_selected_labels_in_their_colours(ng, serve, meshed):
    legacy, _ = meshed
    server = serve({"seg": legacy})
    position = (64, 64, 32)
    state = seg_layer(xy_state([source(legacy, "seg", server.url("seg"))], position, 0.5), [BALL, BOX])
    shot = ng.show(state, "segmentation_xy")
    xs, ys = voxel_grid(position, 0.5)
    labels = segmentation()[np.clip(xs, 0, 127), np.clip(ys, 0, 127), 32]
    for label in (BALL, BOX):
        where = labels == label
        assert where.sum() > 1000
        assert np.all(shot[where] == COLORS[label]), (label, np.unique(shot[where].reshape(-1, 3), axis=0)[:5])
    # a label that is not selected, and background, stay dark
    assert np.all(shot[(labels == BIG) | (labels == 0)] == 0)


def mesh_state(path: str, name: str, url: str, selected) -> dict:
    state = viewer_state([source(path, name, url)], position=(64, 64, 32), layout="3d")
    state.update(
        BLACK_VIEW,
        showSlices=False,
        projectionScale=180,
        projectionOrientation=[0.3, -0.25, 0.05, 0.92],
    )
    return seg_layer(state, selected)


def test_legacy_and_sharded_multires_meshes_have_the_same_silhouettes(ng, serve, meshed):
    legacy, sharded = meshed
    server = serve({"legacy": legacy, "sharded": sharded})
    labels = [BALL, BOX, BIG]
    a = ng.show(mesh_state(legacy, "legacy", server.url("legacy"), labels), "mesh_legacy")
    b = ng.show(mesh_state(sharded, "sharded", server.url("sharded"), labels), "mesh_sharded_multires")
    masks_a, masks_b = colour_masks(a), colour_masks(b)
    for label in labels:
        ma, mb = masks_a[label], masks_b[label]
        assert ma.sum() > 500 and mb.sum() > 500, (label, ma.sum(), mb.sum())
        iou = (ma & mb).sum() / (ma | mb).sum()
        assert iou > 0.93, (label, iou)
    assert any(r.mount == "sharded" and r.status == 206 for r in server.requests)


def test_a_mesh_missing_from_the_files_shows_as_missing(ng, serve, meshed, tmp_path):
    legacy, _ = meshed
    copy = tmp_path / "legacy"
    shutil.copytree(legacy[len("file://") :], copy)
    mesh_dir = CloudVolume(f"file://{copy}").info["mesh"]
    CloudFiles(f"file://{copy}/{mesh_dir}").delete([f"{BALL}:0"])  # the ball's manifest
    server = serve({"legacy": f"file://{copy}"})
    state = mesh_state(f"file://{copy}", "legacy", server.url("legacy"), [BALL, BOX, BIG])

    # Neuroglancer never reports a view with a failed mesh as loaded, so the Python-driven
    # screenshot would wait forever: load the state in a page of its own instead.
    def others_drawn(shot):
        masks = colour_masks(shot[WINDOW_VIEW])
        return masks[BOX].sum() > 500 and masks[BIG].sum() > 500

    shot = ng.open_url(state_url(state, ng.client_url), "mesh_missing_ball", loaded=others_drawn)[WINDOW_VIEW]
    masks = colour_masks(shot)
    assert masks[BOX].sum() > 500 and masks[BIG].sum() > 500  # the others are drawn …
    assert masks[BALL].sum() == 0  # … the ball is not
    assert any(r.path.endswith(f"/{BALL}:0") and r.status == 404 for r in server.requests)


# -- skeletons ---------------------------------------------------------------------------------

# 128×128×64 uint64 at 8 nm: thick tubes (radius 6 voxels), each crossing task seams of the
# 64×64×64 forge: 7 along x (at y = 32), 42 along y (at x = 96), 1000000007 along x (at y = 100,
# x < 56). Seen down the z axis, 7 is a horizontal line in the upper half, 42 a vertical line in
# the right half and 1000000007 a shorter horizontal line at the lower left.
TUBE_X, TUBE_Y, OTHER = BALL, BOX, BIG


def tubes() -> np.ndarray:
    x, y, z = np.meshgrid(*(np.arange(n) for n in SEG_SHAPE), indexing="ij")
    seg = np.zeros(SEG_SHAPE, dtype=np.uint64)
    seg[((y - 32) ** 2 + (z - 32) ** 2 < 36) & (x >= 8) & (x < 120)] = TUBE_X
    seg[((x - 96) ** 2 + (z - 32) ** 2 < 36) & (y >= 48) & (y < 120)] = TUBE_Y
    seg[((y - 100) ** 2 + (z - 32) ** 2 < 36) & (x >= 8) & (x < 56)] = OTHER
    return seg


@pytest.fixture(scope="module")
def skeletonized(tmp_path_factory):
    """The tubes forged in 2×2×1 tasks and merged into one unsharded skeleton per label."""
    root = tmp_path_factory.mktemp("skel")
    path = make_layer(f"file://{root}/tubes", tubes(), resolution=(8, 8, 8), chunk_size=(64, 64, 32),
                      encoding="compressed_segmentation")  # fmt: skip
    run(tc.create_skeletonizing_tasks(path, 0, shape=(64, 64, 64), teasar_params={"scale": 4, "const": 10}))
    run(tc.create_unsharded_skeleton_merge_tasks(path, magnitude=1, dust_threshold=200, tick_threshold=0))
    return path


def skeleton_state(path: str, name: str, url: str, selected) -> dict:
    """The 3-D panel alone, looking down z (x right, y down), skeletons as thick lines."""
    state = viewer_state([source(path, name, url)], position=(64, 64, 32), layout="3d")
    state.update(BLACK_VIEW, showSlices=False, projectionScale=160, projectionOrientation=[0, 0, 0, 1])
    state = seg_layer(state, selected)
    state["layers"][0]["skeletonRendering"] = {"mode3d": "lines", "lineWidth3d": 4}
    return state


def extent(mask: np.ndarray) -> tuple:
    """(rows spanned, columns spanned, centre row, centre column) of a mask's pixels."""
    rows, cols = np.nonzero(mask)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1, rows.mean(), cols.mean()


def test_skeletons_of_selected_labels_run_along_their_tubes(ng, serve, skeletonized):
    path = skeletonized
    assert CloudVolume(path).skeleton.get(TUBE_X).cable_length() > 700  # one piece across the seam
    server = serve({"skel": path})
    shot = ng.show(skeleton_state(path, "skel", server.url("skel"), [TUBE_X, TUBE_Y]), "skeletons_3d")
    masks = colour_masks(shot)
    assert masks[TUBE_X].sum() > 100 and masks[TUBE_Y].sum() > 100, (masks[TUBE_X].sum(), masks[TUBE_Y].sum())
    h, w, row_x, col_x = extent(masks[TUBE_X])
    assert w > 4 * h and w > 0.5 * SIZE[0], (h, w)  # a horizontal line most of the view wide …
    h, w, row_y, col_y = extent(masks[TUBE_Y])
    assert h > 4 * w and h > 0.3 * SIZE[1], (h, w)  # … and a vertical one
    assert row_x < row_y and col_y > col_x  # 7 in the upper half, 42 on the right
    assert masks[OTHER].sum() == 0  # not selected: not drawn …
    assert any(r.path.endswith(f"/{TUBE_X}") and r.status == 200 for r in server.requests)
    shot = ng.show(skeleton_state(path, "skel", server.url("skel"), [TUBE_X, TUBE_Y, OTHER]), "skeletons_3d_all")
    h, w, row_o, col_o = extent(colour_masks(shot)[OTHER])  # … selected: drawn, lower left
    assert w > 4 * h and row_o > row_x and col_o < col_y, (h, w, row_o, col_o)


def test_a_skeleton_missing_from_the_files_shows_nothing(ng, serve, skeletonized, tmp_path):
    copy = tmp_path / "tubes"
    shutil.copytree(skeletonized[len("file://") :], copy)
    skel_dir = CloudVolume(f"file://{copy}").info["skeletons"]
    CloudFiles(f"file://{copy}/{skel_dir}").delete([str(TUBE_Y)])
    server = serve({"skel": f"file://{copy}"})
    state = skeleton_state(f"file://{copy}", "skel", server.url("skel"), [TUBE_X, TUBE_Y])

    # As with a missing mesh, the view never reports loaded: load it in a page of its own.
    def other_drawn(shot):
        return colour_masks(shot[WINDOW_VIEW])[TUBE_X].sum() > 100

    shot = ng.open_url(state_url(state, ng.client_url), "skeleton_missing", loaded=other_drawn)[WINDOW_VIEW]
    masks = colour_masks(shot)
    assert masks[TUBE_X].sum() > 100  # the other skeleton is drawn …
    assert masks[TUBE_Y].sum() == 0  # … the removed one is not
    assert any(r.path.endswith(f"/{TUBE_Y}") and r.status == 404 for r in server.requests)


# -- igneous view ------------------------------------------------------------------------------


def rgb_image() -> np.ndarray:
    """128×128×8, 3 channels: red for x < 64, green above (y < 64) and blue below on the right."""
    data = np.zeros((128, 128, 8, 3), dtype=np.uint8)
    data[:64, :, :, 0] = 255
    data[64:, :64, :, 1] = 255
    data[64:, 64:, :, 2] = 255
    return data


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            pytest.fail(f"igneous view printed no URL within {timeout:.0f} s: {proc.stderr.read()!r}")
    return proc.stdout.readline().strip()


def test_igneous_view_url_shows_the_layer(ng, tmp_path):
    path = make_layer(f"file://{tmp_path}/rgb", rgb_image(), resolution=(8, 8, 40), chunk_size=(64, 64, 8))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "igneous_cli", "view", path, "--no-browser", "--port", "0", "--ng", ng.client_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        url = read_line(proc, 60)
        assert url.startswith(ng.client_url + "#!"), url

        def drawn(shot):
            return all(np.all(shot[WINDOW_VIEW] == c, axis=2).sum() > 2000 for c in ((255, 0, 0), (0, 0, 255)))

        shot = ng.open_url(url, "igneous_view_rgb", loaded=drawn)[WINDOW_VIEW]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    # The RGB shader shows each channel as its colour (in the 4-panel layout's three slices).
    for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        assert np.all(shot == colour, axis=2).sum() > 2000, colour
