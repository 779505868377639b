"""Every view a bundle has, registered once: name, file under metadata/, class. Adding a view is
one module (copy manifest/views/example.py) and one line here."""

from __future__ import annotations

from manifest.views.base import ViewSpec
from manifest.views.bodyfile import BodyfileView
from manifest.views.case_jsonld import CaseView
from manifest.views.dfxml import DfxmlView

VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("bodyfile", "bodyfile.txt", BodyfileView),
    ViewSpec("dfxml", "dfxml.xml", DfxmlView),
    ViewSpec("case", "case.jsonld", CaseView),
)
