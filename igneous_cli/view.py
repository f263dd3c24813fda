"""``igneous view PATH [PATH...]``: open layers in Neuroglancer.

Builds a Neuroglancer state (``igneous.viewer``) with one layer per PATH and prints its URL.
Neuroglancer in a browser cannot read ``file://`` layers, so those (and every layer with
``--indirect``) are served on localhost with CORS (``igneous.serving``) until Ctrl-C.
"""

from __future__ import annotations

import sys
import webbrowser

import click

from igneous_cli.params import CloudPath, Tuple3

__all__ = ["view"]


@click.command()
@click.argument("paths", nargs=-1, required=True, type=CloudPath())
@click.option(
    "--browser/--no-browser", default=True, show_default=True, help="Open the URL in a browser (else only print it)."
)
@click.option(
    "--port", default=1337, type=int, show_default=True, help="Port of the local file server (or the next free of 10)."
)
@click.option(
    "--ng",
    default=None,
    help="Neuroglancer to use (default: the demo app; an all-codecs build for crackle/zfpc/fpzip/kempressed).",
)
@click.option("--pos", type=Tuple3(), default=None, help="Initial position x,y,z in mip 0 voxels.")
@click.option(
    "--indirect",
    is_flag=True,
    default=False,
    help="Serve every layer through the local server (always for file://), e.g. for stores the browser cannot read.",
)
@click.option("--name", "names", multiple=True, help="Layer name (repeat for several PATHs; default: last path part).")
def view(paths, browser, port, ng, pos, indirect, names):
    """Show the layers at PATH... in Neuroglancer; serve local ones until Ctrl-C."""
    from cloudfiles import CloudFiles
    from cloudfiles import paths as cfpaths

    from igneous.serving import LayerServer, mount_names
    from igneous.viewer import DIRECT_PROTOCOLS, LayerSource, default_viewer, state_url, viewer_state

    if len(names) > len(paths):
        raise click.BadParameter(f"{len(names)} names for {len(paths)} layers", param_hint="'--name'")
    locations = [_strip_format(p) for p in paths]
    infos = []
    for path, location in zip(paths, locations):
        try:
            info = CloudFiles(location).get_json("info")
        except Exception as err:  # an unreachable store is the user's to fix: one line
            raise click.UsageError(f"cannot read {path}/info: {err}") from None
        if not info or "scales" not in info:
            raise click.UsageError(f"{path} has no Neuroglancer Precomputed info file")
        infos.append(info)

    mounts = mount_names(locations)
    served = {
        mount: location
        for mount, location in zip(mounts, locations)
        if indirect or cfpaths.extract(location).protocol not in DIRECT_PROTOCOLS
    }
    server = None
    if served:
        try:
            server = LayerServer(served, port=port)
        except OSError as err:
            raise click.UsageError(f"--port: {err}") from None

    sources = []
    for i, (mount, location, info) in enumerate(zip(mounts, locations, infos)):
        url = server.url(mount) if mount in served else location
        sources.append(LayerSource(info, url, names[i] if i < len(names) else mount))
    url = state_url(viewer_state(sources, position=pos), ng or default_viewer(infos))

    if server is None:
        _announce(url, browser)
        return
    server.start()
    try:  # Ctrl-C at any point from here on is the normal way to stop
        _announce(url, browser)
        click.echo(f"serving {', '.join(served.values())} on http://localhost:{server.port} until Ctrl-C", err=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _announce(url: str, browser: bool) -> None:
    click.echo(url)
    sys.stdout.flush()
    if browser:
        webbrowser.open(url, new=2)


def _strip_format(path: str) -> str:
    """``precomputed://gs://b/l`` → ``gs://b/l``: the store location CloudFiles reads."""
    prefix = "precomputed://"
    return path[len(prefix) :] if path.startswith(prefix) else path
