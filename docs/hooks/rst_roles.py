"""mkdocs hook: the reStructuredText roles of the docstrings, shown as the code they name.

The docstrings write ``:func:`pntk``` and ``:class:`~scores.eigen.Spectrum```, which
mkdocstrings leaves as ``:func:<code>pntk</code>``; this keeps the code and drops the role (and
the ``~`` that shortens a dotted path in Sphinx).
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):<code>~?")


def on_page_content(html: str, page, config, files) -> str:
    return ROLE.sub("<code>", html)
