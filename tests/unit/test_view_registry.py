"""Every registered view (and the example to copy) passes the same checks: a documented class,
one template that writes exactly what the general rule does, and the same file whether items
come in one batch, one at a time, or through a worker's spool."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import pytest

from manifest.osio.spool import Spool
from manifest.views import VIEWS, ViewSet, plain_file
from manifest.views.example import EXAMPLE
from tests.support.views import CTX, DirWriter, awkward_items, item

if TYPE_CHECKING:
    from pathlib import Path

    from manifest.views import ViewSpec

EVERY = (*VIEWS, EXAMPLE)


def plain_items() -> list[dict[str, object]]:
    """Regular files whose paths need no escaping: the per-file hot path."""
    return [
        item(1),
        item(2, birthtime=None, birthtime_ns=None),
        item(3, source_path="/home/ünïcode/файл отчёт.txt", size=0, uid=1000, gid=1000),
        item(4, source_path="/srv/it's (1) [copy] #2;x=y%20.log", atime_ns=-5, atime="1969-12-31T23:59:59Z"),
        item(5, source_path="/a/b/", mode=0o100000, nlink=3),
    ]


def test_registry_names_and_files_are_unique() -> None:
    assert len({s.name for s in EVERY}) == len({s.filename for s in EVERY}) == len(EVERY)
    assert [s.filename for s in VIEWS] == ["bodyfile.txt", "dfxml.xml", "case.jsonld"]
    assert EXAMPLE not in VIEWS, "the example view is for copying, not for bundles"


@pytest.mark.parametrize("spec", EVERY, ids=lambda s: s.name)
def test_view_class_is_documented_and_typed(spec: ViewSpec) -> None:
    cls = spec.view
    assert inspect.getdoc(cls), f"{spec.name}: the class says what its file holds"
    view = cls(CTX)
    assert isinstance(view.parts, int) and view.parts >= 1
    for name in ("begin", "render", "add", "add_from", "end"):
        hints = inspect.get_annotations(getattr(type(view), name))
        assert "return" in hints, f"{spec.name}.{name} is annotated"


@pytest.mark.parametrize("spec", EVERY, ids=lambda s: s.name)
def test_plain_template_writes_what_the_general_rule_does(spec: ViewSpec) -> None:
    view = spec.view(CTX)
    for it in plain_items():
        assert plain_file(it), it
        assert view.render([(it, True)]) == view.render([(it, False)]), it["source_path"]
    for it in awkward_items()[1:]:
        assert not plain_file(it), it["id"]
    partial = item(6)
    del partial["nlink"]  # a record without every field: the template gives way to the general rule
    assert view.render([(partial, True)]) == view.render([(partial, False)])


def _written(tmp_path: Path, spec: ViewSpec, name: str, feed: str) -> bytes:
    items = [*plain_items(), *awkward_items()]
    writer = DirWriter(tmp_path / name)
    views = ViewSet(CTX, [spec])
    views.open(writer)
    if feed == "one batch":
        views.append(views.render(items))
    elif feed == "item by item":
        for it in items:
            views.append(views.render([it]))
    else:  # as acquisition workers hand batches over: through the spool, copied in the kernel
        spool = Spool(tmp_path)
        for start in range(0, len(items), 3):
            spooled = spool.put(views.render(items[start : start + 3]))
            views.append_from(spool, spooled.ranges())
            spool.release(spooled)
        spool.close()
    views.close()
    return (tmp_path / name / "metadata" / spec.filename).read_bytes()


@pytest.mark.parametrize("spec", EVERY, ids=lambda s: s.name)
def test_batches_and_the_spool_write_the_same_file(tmp_path: Path, spec: ViewSpec) -> None:
    whole = _written(tmp_path, spec, "a", "one batch")
    assert len(whole) > 200
    assert _written(tmp_path, spec, "b", "item by item") == whole
    assert _written(tmp_path, spec, "c", "through the spool") == whole


@pytest.mark.parametrize("spec", EVERY, ids=lambda s: s.name)
def test_volatile_snapshots_are_not_given_to_a_view(spec: ViewSpec) -> None:
    volatile = awkward_items()[-1]
    assert volatile["kind"] == "volatile"
    views = ViewSet(CTX, [spec])
    assert views.render([volatile]) == views.render([])
    assert views.render([item(1), volatile]) == views.render([item(1)])


def test_a_view_set_refuses_parts_of_another_shape(tmp_path: Path) -> None:
    views = ViewSet(CTX)
    views.open(DirWriter(tmp_path))
    with pytest.raises(ValueError, match="view parts"):
        views.append([b"only one part"])
    views.close()
