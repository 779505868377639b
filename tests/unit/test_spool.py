"""Worker output through the spool file: the same bundle bytes as in-process acquisition."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from collectors.acquire import Source, acquire
from manifest.bundle import BundleWriter, WriterState
from manifest.osio.mountns import enter_noatime_namespace
from manifest.osio.spool import Spool
from manifest.signing.keys import KeyStore
from tests.support.builders import build_awkward_tree
from tests.support.env import clear_flags, require_root

if TYPE_CHECKING:
    from pathlib import Path


def test_spool_ranges_survive_workers_and_copy_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert not list(tmp_path.iterdir())  # unnamed: nothing to see or clean up
    pid = os.fork()
    if pid == 0:  # a worker writes its batch
        spooled = spool.put([b"second-a", b"", b"second-b"])
        os._exit(0 if spooled.lengths == (8, 0, 8) else 1)
    first = spool.put([b"first-a\n", b"first-b\n"])
    assert os.waitpid(pid, 0)[1] == 0
    out = tmp_path / "out"
    with out.open("wb") as fh:
        fh.write(b"head\n")
        fh.flush()
        for offset, length in first.ranges():
            spool.copy(offset, length, fh.fileno())
        spool.release(first)
    assert out.read_bytes() == b"head\nfirst-a\nfirst-b\n"
    second_offset = 0 if first.offset else sum(first.lengths)
    assert spool.read(second_offset, 8) == b"second-a"
    spool.close()


def _bundle(tmp_path: Path, src: Path, workers: int) -> Path:
    store = KeyStore(tmp_path / "home")
    store.generate("Ann Example", "IT responder", "City IT")
    out = tmp_path / f"out-{workers}"
    out.mkdir()
    writer = BundleWriter(
        WriterState.fresh(out, case="C-SPOOL", signer=store.load_signer(None), immutable=False)
    )
    acquire(writer, [Source(os.fsencode(src), os.fsencode(src), "files/cli")], workers=workers)
    return writer.seal({})


def test_workers_and_one_process_write_the_same_records(tmp_path: Path) -> None:
    require_root()  # both runs read from a noatime namespace, so neither moves a symlink's atime
    src = build_awkward_tree(tmp_path, big_mib=2)  # hard links, odd names, a fifo, symlinks
    pid = os.fork()
    if pid == 0:  # the namespace is this child's alone; the test process keeps the machine's
        code = 1
        try:
            _points, problem = enter_noatime_namespace([os.fsencode(src)])
            if problem is None:
                _bundle(tmp_path / "a", src, 1)
                _bundle(tmp_path / "b", src, 3)
                code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    (one,) = (tmp_path / "a/out-1").iterdir()
    (many,) = (tmp_path / "b/out-3").iterdir()
    try:

        def records(bundle: Path) -> list[dict]:
            items = [json.loads(x) for x in (bundle / "metadata/items.jsonl").read_bytes().splitlines()]
            return [{k: v for k, v in i.items() if not k.startswith("acquired_")} for i in items]

        assert records(one) == records(many)
        assert any("hard link" in (r["note"] or "") for r in records(many))
        for rel in ("manifest-sha256.txt", "metadata/bodyfile.txt"):
            assert (one / rel).read_bytes() == (many / rel).read_bytes(), rel
        dfxml = [(b / "metadata/dfxml.xml").read_text().split("</creator>\n", 1)[1] for b in (one, many)]
        assert dfxml[0] == dfxml[1]
        graphs = [json.loads((b / "metadata/case.jsonld").read_text())["@graph"] for b in (one, many)]
        assert len(graphs[0]) == len(graphs[1]) and len(graphs[1][-1]["action:result"]) == len(graphs[1]) - 3
    finally:
        clear_flags(tmp_path)
