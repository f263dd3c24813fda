"""Neuroglancer viewer states for layers Igneous reads and writes (``igneous view``).

Pure functions of a layer's ``info``: no I/O, so every rule is unit-tested without a browser.
A state is the JSON Neuroglancer keeps after ``#!`` in its URL: ``dimensions`` (the mip-0
resolution, in metres), one layer per source, ``layout`` and an optional ``position``.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Optional, Sequence

__all__ = [
    "DEMO_NEUROGLANCER",
    "ALL_CODECS_NEUROGLANCER",
    "ALL_CODECS_ONLY",
    "LayerSource",
    "dimensions",
    "layer_state",
    "viewer_state",
    "state_url",
    "needs_all_codecs",
    "default_viewer",
    "source_url",
    "RGB_SHADER",
    "DIRECT_PROTOCOLS",
]

DEMO_NEUROGLANCER = "https://neuroglancer-demo.appspot.com/"
# The build with the codecs upstream Neuroglancer lacks, as cloud-volume's README points to it.
ALL_CODECS_NEUROGLANCER = "https://allcodecs-dot-neuromancer-seung-import.appspot.com/"
ALL_CODECS_ONLY = frozenset({"crackle", "zfpc", "kempressed", "fpzip"})

# Neuroglancer makes a precomputed layer's channels a channel axis (``c^``) that
# getDataValue(i) indexes; its default shader would show channel 0 alone, in grey.
RGB_SHADER = """void main() {
  emitRGB(vec3(toNormalized(getDataValue(0)), toNormalized(getDataValue(1)), toNormalized(getDataValue(2))));
}
"""

# The sources Neuroglancer can fetch itself; anything else goes through a local server.
DIRECT_PROTOCOLS = ("gs", "s3", "http", "https")


@dataclass(frozen=True)
class LayerSource:
    """One layer to show: its ``info``, where Neuroglancer fetches it, and its name."""

    info: dict
    url: str  # what Neuroglancer fetches: http(s)://, gs://, s3://
    name: str


def dimensions(info: dict) -> dict:
    """The state's ``dimensions``: mip 0's resolution (nm in the info) in metres."""
    res = info["scales"][0]["resolution"]
    return {axis: [float(r) / 1e9, "m"] for axis, r in zip("xyz", res)}


def needs_all_codecs(info: dict) -> bool:
    """True when a scale is stored in a codec only the all-codecs Neuroglancer build decodes."""
    return any(scale.get("encoding") in ALL_CODECS_ONLY for scale in info.get("scales", []))


def default_viewer(infos: Sequence[dict]) -> str:
    """The demo viewer, or the all-codecs build when any layer needs it."""
    return ALL_CODECS_NEUROGLANCER if any(needs_all_codecs(i) for i in infos) else DEMO_NEUROGLANCER


def source_url(url: str) -> str:
    """``precomputed://`` + the location (gs://, s3://, http(s)://)."""
    return url if url.startswith("precomputed://") else f"precomputed://{url}"


def layer_state(source: LayerSource) -> dict:
    """One Neuroglancer layer: image or segmentation (with its mesh and skeleton sources)."""
    info = source.info
    kind = "segmentation" if info.get("type") == "segmentation" else "image"
    layer: dict = {"type": kind, "name": source.name}
    url = source_url(source.url)
    if kind == "segmentation":
        subsources = {"default": True, "bounds": True}
        for key in ("mesh", "skeletons"):
            if info.get(key):
                subsources[key] = True
        layer["source"] = {"url": url, "subsources": subsources, "enableDefaultSubsources": False}
        return layer
    layer["source"] = url
    if int(info.get("num_channels", 1)) == 3:
        layer["shader"] = RGB_SHADER
    return layer


def viewer_state(
    sources: Sequence[LayerSource], position: Optional[Sequence[float]] = None, layout: str = "4panel"
) -> dict:
    """The whole state: dimensions from the first layer's mip 0, one layer per source.

    ``position`` is in mip-0 voxels of the first layer; Neuroglancer centres on the data
    when it is omitted.
    """
    if not sources:
        raise ValueError("a viewer state needs at least one layer")
    state: dict = {"dimensions": dimensions(sources[0].info)}
    if position is not None:
        state["position"] = [float(p) for p in position]
    state["layers"] = [layer_state(s) for s in sources]
    state["layout"] = layout
    return state


def state_url(state: dict, viewer: str = DEMO_NEUROGLANCER) -> str:
    """``{viewer}#!{state as URL-encoded JSON}``: open it and Neuroglancer shows the state."""
    text = json.dumps(state, separators=(",", ":"))
    return viewer.split("#", 1)[0] + "#!" + urllib.parse.quote(text, safe="")
