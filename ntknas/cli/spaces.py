"""``ntknas spaces``: the search spaces, built in and from plugins."""

from __future__ import annotations

from ntknas import tables
from ntknas.cli.common import out, user_errors


def command() -> None:
    """List the search spaces, built in and from installed plugins."""
    import search_spaces

    rows = []
    with user_errors():
        for name in search_spaces.names():
            space = search_spaces.get(name)
            rows.append((name, f"{space.size:,}", space.summary))
    out.print(tables.listing("Search spaces", ("space", "configurations", "what"), rows))
