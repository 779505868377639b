"""Views of metadata/items.jsonl for investigators' own tools, written beside it (FORMAT.md §1).

items.jsonl stays the authoritative record; each view is derived from it in one streaming
pass, so memory does not grow with the number of items. `registry.VIEWS` lists every view once
(name, file, class); `example.py` is the documented view to copy when adding one.
"""

from __future__ import annotations

from manifest.views.base import View, ViewContext, ViewSpec, plain_file, text_for_view
from manifest.views.registry import VIEWS
from manifest.views.viewset import ViewSet, write_views

__all__ = [
    "VIEWS",
    "View",
    "ViewContext",
    "ViewSet",
    "ViewSpec",
    "plain_file",
    "text_for_view",
    "write_views",
]
