"""CASE/UCO view: the acquisition as an `InvestigativeAction` with its tool, performer and results.

Each result is an `observable:File` with a FileFacet (name, path, size, times) and a
ContentDataFacet holding the SHA-256. Node IRIs are UUIDv5 of the bundle id and item id, so the
same bundle always yields the same graph. Written in two streaming passes over items.jsonl (the
action's result list, then the file objects), so memory does not grow with item count.
"""

from __future__ import annotations

import json
import uuid
from typing import IO, TYPE_CHECKING, Any

from manifest.views import iter_items, text_for_view

if TYPE_CHECKING:
    from pathlib import Path

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
    node_id = _iri("File", ctx.bundle_id, str(item.get("id")))
    path = text_for_view(str(item.get("source_path") or ""))
    facet: dict[str, Any] = {
        "@id": _iri("FileFacet", ctx.bundle_id, str(item.get("id"))),
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
                "@id": _iri("ContentDataFacet", ctx.bundle_id, str(item.get("id"))),
                "@type": "observable:ContentDataFacet",
                "observable:hash": [
                    {
                        "@id": _iri("Hash", ctx.bundle_id, str(item.get("id"))),
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


def write(items_path: Path, out: IO[bytes], ctx: ViewContext) -> None:
    tool_id = _iri("Tool", ctx.tool, ctx.version)
    performer_id = _iri("Person", ctx.performer_key or ctx.performer_name or "unknown")
    action_id = _iri("InvestigativeAction", ctx.bundle_id)
    out.write(b'{"@context":' + _dump(CONTEXT) + b',"@graph":[\n')
    out.write(
        _dump(
            {
                "@id": tool_id,
                "@type": "tool:Tool",
                "core:name": ctx.tool,
                "tool:version": ctx.version,
                "tool:toolType": "evidence acquisition",
            }
        )
        + b",\n"
    )
    person: dict[str, Any] = {"@id": performer_id, "@type": "identity:Person"}
    who = ", ".join(x for x in (ctx.performer_name, ctx.performer_role, ctx.performer_organization) if x)
    if who:
        person["core:name"] = who
    if ctx.performer_key:
        person["core:description"] = f"signing key {ctx.performer_key}"
    out.write(_dump(person) + b",\n")
    head: dict[str, Any] = {
        "@id": action_id,
        "@type": "case-investigation:InvestigativeAction",
        "core:name": "acquisition",
        "core:description": (
            f"sealbox acquisition of host {ctx.host} for case {ctx.case} (bundle {ctx.bundle_id})"
        ),
        "action:instrument": {"@id": tool_id},
        "action:performer": {"@id": performer_id},
    }
    if ctx.started:
        head["action:startTime"] = _dt(ctx.started)
    if ctx.ended:
        head["action:endTime"] = _dt(ctx.ended)
    # The action object stays open while its result list streams, then closes before the files.
    opened = _dump(head)[:-1] + b',"action:result":['
    out.write(opened)
    first = True
    for item in iter_items(items_path):
        if item.get("kind") == "volatile":
            continue
        ref = _dump({"@id": _iri("File", ctx.bundle_id, str(item.get("id")))})
        out.write(ref if first else b"," + ref)
        first = False
    out.write(b"]}")
    for item in iter_items(items_path):
        if item.get("kind") == "volatile":
            continue
        out.write(b",\n" + _dump(file_node(item, ctx)))
    out.write(b"\n]}\n")
