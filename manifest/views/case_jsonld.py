"""CASE/UCO view: the acquisition as an `InvestigativeAction` with its tool, performer and results.

Each result is an `observable:File` with a FileFacet (name, path, size, times) and a
ContentDataFacet holding the SHA-256. Node IRIs are UUIDv5 of the bundle id and item id, so the
same bundle always yields the same graph. Written in one streaming pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from json.encoder import encode_basestring as _s
from typing import IO, TYPE_CHECKING, Any

from manifest.format.timefmt import now_rfc3339
from manifest.views.base import text_for_view

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from manifest.osio.spool import Spool
    from manifest.views.base import Shown, ViewContext

CONTEXT = {
    "kb": "http://example.org/kb/",
    "action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "vocabulary": "https://ontology.unifiedcyberontology.org/uco/vocabulary/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
_NS = uuid.UUID("6f0e1c55-7b0a-4d8e-9a51-5ea1b0c0ffee")


def _iri(kind: str, *parts: str) -> str:
    return f"kb:{kind}-{uuid.uuid5(_NS, '/'.join(parts))}"


def _dt(value: str) -> dict[str, str]:
    return {"@type": "xsd:dateTime", "@value": value}


def _int(value: int) -> dict[str, str]:
    return {"@type": "xsd:integer", "@value": str(value)}


_TIMES = (
    ("mtime", "observable:modifiedTime"),
    ("atime", "observable:accessedTime"),
    ("ctime", "observable:metadataChangeTime"),
    ("birthtime", "observable:observableCreatedTime"),
)


_PREFIXES: dict[str, Any] = {}  # bundle id -> SHA-1 state of the namespace and `bundle/`
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _item_uuid(bundle_id: str, item_id: object) -> str:
    """UUIDv5 (RFC 4122) of `bundle/item` in the sealbox namespace, as uuid.uuid5 makes it, without
    uuid.UUID objects, and hashing the common prefix once per bundle (this runs once per file)."""
    base = _PREFIXES.get(bundle_id)
    if base is None:
        if len(_PREFIXES) > 16:
            _PREFIXES.clear()
        base = _PREFIXES[bundle_id] = hashlib.sha1(_NS.bytes + f"{bundle_id}/".encode())
    h = base.copy()
    h.update(str(item_id).encode())
    x = h.hexdigest()  # version 5 in the 13th hex digit, the RFC 4122 variant in the 17th
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def file_node(item: dict[str, Any], ctx: ViewContext) -> tuple[str, str]:
    """(JSON text of the File node, its @id): a template, since this runs once per file.
    One UUID per item; the node kinds tell its File, facets and hash apart."""
    uid = _item_uuid(ctx.bundle_id, item.get("id"))
    node_id = f"kb:File-{uid}"
    path = text_for_view(str(item.get("source_path") or ""))
    facet = [
        f'"@id":"kb:FileFacet-{uid}","@type":"observable:FileFacet"',
        f'"observable:fileName":{_s(path.rsplit("/", 1)[-1] or path)}',
        f'"observable:filePath":{_s(path)}',
        f'"observable:isDirectory":{"true" if item.get("kind") == "directory" else "false"}',
    ]
    if isinstance(item.get("size"), int):
        facet.append(f'"observable:sizeInBytes":{{"@type":"xsd:integer","@value":"{item["size"]}"}}')
    for key, prop in _TIMES:
        if item.get(key):
            facet.append(f'"{prop}":{{"@type":"xsd:dateTime","@value":{_s(str(item[key]))}}}')
    facets = "{" + ",".join(facet) + "}"
    sha = item.get("sha256")
    if sha:
        facets += (
            f',{{"@id":"kb:ContentDataFacet-{uid}","@type":"observable:ContentDataFacet",'
            f'"observable:hash":[{{"@id":"kb:Hash-{uid}","@type":"types:Hash","types:hashMethod":"SHA256",'
            f'"types:hashValue":{{"@type":"xsd:hexBinary","@value":{_s(str(sha).upper())}}}}}]}}'
        )
    description = ""
    if item.get("status") not in (None, "ok"):
        why = item.get("note") or item.get("error") or ""
        description = f',"core:description":{_s("status " + str(item.get("status")) + ": " + str(why))}'
    node = f'{{"@id":"{node_id}","@type":"observable:File","core:hasFacet":[{facets}]{description}}}'
    return node, node_id


def _plain_file_node(item: dict[str, Any], uid: str) -> str:
    path = item["source_path"]
    birth = item.get("birthtime")
    born = (
        f',"observable:observableCreatedTime":{{"@type":"xsd:dateTime","@value":"{birth}"}}' if birth else ""
    )
    return (
        f'{{"@id":"kb:File-{uid}","@type":"observable:File","core:hasFacet":[{{'
        f'"@id":"kb:FileFacet-{uid}","@type":"observable:FileFacet",'
        f'"observable:fileName":"{path.rsplit("/", 1)[-1] or path}","observable:filePath":"{path}",'
        f'"observable:isDirectory":false,'
        f'"observable:sizeInBytes":{{"@type":"xsd:integer","@value":"{item["size"]}"}},'
        f'"observable:modifiedTime":{{"@type":"xsd:dateTime","@value":"{item["mtime"]}"}},'
        f'"observable:accessedTime":{{"@type":"xsd:dateTime","@value":"{item["atime"]}"}},'
        f'"observable:metadataChangeTime":{{"@type":"xsd:dateTime","@value":"{item["ctime"]}"}}{born}}},'
        f'{{"@id":"kb:ContentDataFacet-{uid}","@type":"observable:ContentDataFacet",'
        f'"observable:hash":[{{"@id":"kb:Hash-{uid}","@type":"types:Hash","types:hashMethod":"SHA256",'
        f'"types:hashValue":{{"@type":"xsd:hexBinary","@value":"{item["sha256"].upper()}"}}}}]}}]}}'
    )


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")


class CaseView:
    """File nodes stream first; their ids spool to a temporary file so the action node, written
    last with its result list, needs no second pass and no memory per item. A batch renders to
    two parts: its File nodes, and their `@id` refs for the action's result list."""

    parts = 2

    def __init__(self, ctx: ViewContext) -> None:
        self.ctx = ctx
        self.tool_id = _iri("Tool", ctx.tool, ctx.version)
        self.performer_id = _iri("Person", ctx.performer.fingerprint or ctx.performer.name or "unknown")
        self.spool: IO[bytes] | None = None
        self.first = True

    def begin(self, out: IO[bytes], scratch_dir: Path) -> None:
        ctx = self.ctx
        self.spool = tempfile.TemporaryFile(dir=scratch_dir)  # noqa: SIM115 - closed in end()
        out.write(b'{"@context":' + _dump(CONTEXT) + b',"@graph":[\n')
        tool = {
            "@id": self.tool_id,
            "@type": "tool:Tool",
            "core:name": ctx.tool,
            "tool:version": ctx.version,
            "tool:toolType": "evidence acquisition",
        }
        out.write(_dump(tool) + b",\n")
        person: dict[str, Any] = {"@id": self.performer_id, "@type": "identity:Person"}
        who = ", ".join(x for x in (ctx.performer.name, ctx.performer.role, ctx.performer.organization) if x)
        if who:
            person["core:name"] = who
        if ctx.performer.fingerprint:
            person["core:description"] = f"signing key {ctx.performer.fingerprint}"
        out.write(_dump(person))

    def render(self, items: Sequence[Shown]) -> list[bytes]:
        nodes: list[bytes] = []
        refs: list[bytes] = []
        for item, plain in items:
            node_ref = None
            if plain:
                try:
                    node_ref = self.plain_parts(item)
                except KeyError:  # a record without every field: the general rule copes
                    pass
            node, ref = node_ref or self.node_parts(item)
            nodes.append(node)
            refs.append(ref)
        return [b"".join(nodes), b",".join(refs)]

    def node_parts(self, item: dict[str, Any]) -> tuple[bytes, bytes]:
        """(`,\n` and the item's File node, its `@id` ref)."""
        node, node_id = file_node(item, self.ctx)
        return f",\n{node}".encode(), f'{{"@id":"{node_id}"}}'.encode()

    def plain_parts(self, item: dict[str, Any]) -> tuple[bytes, bytes]:
        """`node_parts` by one template, for an item `plain_file` accepts."""
        uid = _item_uuid(self.ctx.bundle_id, item["id"])
        return f",\n{_plain_file_node(item, uid)}".encode(), f'{{"@id":"kb:File-{uid}"}}'.encode()

    def add(self, out: IO[bytes], parts: Sequence[bytes]) -> None:
        assert self.spool is not None
        nodes, refs = parts
        out.write(nodes)
        if refs:
            self.spool.write((b"" if self.first else b",") + refs)
            self.first = False

    def add_from(self, out: IO[bytes], spool: Spool, ranges: Sequence[tuple[int, int]]) -> None:
        """`add`, for parts in a worker's spool (see manifest/osio/spool.py): copied in the kernel."""
        assert self.spool is not None
        (node_offset, node_length), (offset, length) = ranges
        if node_length:
            out.flush()
            spool.copy(node_offset, node_length, out.fileno())
        if not length:
            return
        if not self.first:
            self.spool.write(b",")
        self.spool.flush()
        spool.copy(offset, length, self.spool.fileno())
        self.spool.seek(0, os.SEEK_END)  # the buffered file learns where the copy ended
        self.first = False

    def end(self, out: IO[bytes]) -> None:
        assert self.spool is not None
        ctx = self.ctx
        head: dict[str, Any] = {
            "@id": _iri("InvestigativeAction", ctx.bundle_id),
            "@type": "case-investigation:InvestigativeAction",
            "core:name": "acquisition",
            "core:description": (
                f"sealbox acquisition of host {ctx.host} for case {ctx.case} (bundle {ctx.bundle_id})"
            ),
            "action:instrument": {"@id": self.tool_id},
            "action:performer": {"@id": self.performer_id},
        }
        if ctx.started:
            head["action:startTime"] = _dt(ctx.started)
        head["action:endTime"] = _dt(ctx.ended or now_rfc3339())
        out.write(b",\n" + _dump(head)[:-1] + b',"action:result":[')
        self.spool.seek(0)
        shutil.copyfileobj(self.spool, out)
        self.spool.close()
        out.write(b"]}\n]}\n")
