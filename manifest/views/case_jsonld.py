"""CASE/UCO view: the acquisition as an `InvestigativeAction` with its tool, performer and results.

Each result is an `observable:File` with a FileFacet (name, path, size, times) and a
ContentDataFacet holding the SHA-256. Node IRIs are UUIDv5 of the bundle id and item id, so the
same bundle always yields the same graph. Written in one streaming pass.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from typing import IO, TYPE_CHECKING, Any

from manifest.timefmt import now_rfc3339
from manifest.views import text_for_view

if TYPE_CHECKING:
    from manifest.views import ViewContext

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


def file_node(item: dict[str, Any], ctx: ViewContext) -> dict[str, Any]:
    # One UUIDv5 per item; the node kinds below tell its File, facets and hash apart.
    uid = uuid.uuid5(_NS, f"{ctx.bundle_id}/{item.get('id')}")
    node_id = f"kb:File-{uid}"
    path = text_for_view(str(item.get("source_path") or ""))
    facet: dict[str, Any] = {
        "@id": f"kb:FileFacet-{uid}",
        "@type": "observable:FileFacet",
        "observable:fileName": path.rsplit("/", 1)[-1] or path,
        "observable:filePath": path,
        "observable:isDirectory": item.get("kind") == "directory",
    }
    if isinstance(item.get("size"), int):
        facet["observable:sizeInBytes"] = _int(item["size"])
    for key, prop in (
        ("mtime", "observable:modifiedTime"),
        ("atime", "observable:accessedTime"),
        ("ctime", "observable:metadataChangeTime"),
        ("birthtime", "observable:observableCreatedTime"),
    ):
        if item.get(key):
            facet[prop] = _dt(item[key])
    facets: list[dict[str, Any]] = [facet]
    if item.get("sha256"):
        facets.append(
            {
                "@id": f"kb:ContentDataFacet-{uid}",
                "@type": "observable:ContentDataFacet",
                "observable:hash": [
                    {
                        "@id": f"kb:Hash-{uid}",
                        "@type": "types:Hash",
                        "types:hashMethod": "SHA256",
                        "types:hashValue": {"@type": "xsd:hexBinary", "@value": item["sha256"].upper()},
                    }
                ],
            }
        )
    node: dict[str, Any] = {"@id": node_id, "@type": "observable:File", "core:hasFacet": facets}
    if item.get("status") not in (None, "ok"):
        why = item.get("note") or item.get("error") or ""
        node["core:description"] = f"status {item.get('status')}: {why}"
    return node


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")


class CaseView:
    """File nodes stream first; their ids spool to a temporary file so the action node, written
    last with its result list, needs no second pass and no memory per item. A fragment is
    `node NUL ref NUL` (NUL never occurs in JSON text), split again when added."""

    name = "case.jsonld"

    def __init__(self, ctx: ViewContext) -> None:
        self.ctx = ctx
        self.tool_id = _iri("Tool", ctx.tool, ctx.version)
        self.performer_id = _iri("Person", ctx.performer_key or ctx.performer_name or "unknown")
        self.spool: IO[bytes] | None = None
        self.first = True

    def begin(self, out: IO[bytes]) -> None:
        ctx = self.ctx
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in end()
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
        who = ", ".join(x for x in (ctx.performer_name, ctx.performer_role, ctx.performer_organization) if x)
        if who:
            person["core:name"] = who
        if ctx.performer_key:
            person["core:description"] = f"signing key {ctx.performer_key}"
        out.write(_dump(person))

    def fragment(self, item: dict[str, Any]) -> bytes:
        node = file_node(item, self.ctx)
        return _dump(node) + b"\0" + _dump({"@id": node["@id"]}) + b"\0"

    def add(self, out: IO[bytes], blob: bytes) -> None:
        assert self.spool is not None
        parts = blob.split(b"\0")
        nodes, refs = parts[0:-1:2], parts[1::2]
        out.write(b"".join(b",\n" + node for node in nodes))
        self.spool.write((b"" if self.first else b",") + b",".join(refs))
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
