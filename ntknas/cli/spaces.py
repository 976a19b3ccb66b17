"""``ntknas spaces``: the search spaces, built in and from plugins."""

from __future__ import annotations

from ntknas.cli.common import out, warn
from ntknas.outputs import tables


def command() -> None:
    """List the search spaces, built in and from installed plugins.

    A plugin that cannot be loaded is left out with a warning that says why.
    """
    import search_spaces

    plugins = search_spaces.plugins()
    rows = []
    for name in search_spaces.names():
        if search_spaces.builtin(name):
            source = "built in"
            if name in plugins:
                warn(f"plugin space {name!r} ({plugins[name]}) is hidden by the built-in space of that name")
        else:
            source = plugins[name]
        try:
            space = search_spaces.get(name)
        except search_spaces.UnknownSpace as e:
            warn(str(e))
            continue
        size = f"{space.size:,}" if isinstance(space.size, int) else str(space.size)
        rows.append((name, size, str(space.summary), source))
    out.print(tables.listing("Search spaces", ("space", "configurations", "what", "from"), rows))
