"""The records that cross to the acquisition workers in pickles come back whole and typed."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from collectors.acquire.records import DirId, Task

_dir_ids = st.none() | st.builds(DirId, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))


@given(
    st.integers(0, 10**9),
    st.binary(max_size=64),
    st.binary(max_size=64),
    st.integers(0, 99),
    _dir_ids,
    st.booleans(),
    st.booleans(),
)
def test_a_task_survives_the_pickle_with_every_field_and_its_types(
    item_id: int, path: bytes, original: bytes, source: int, listed: DirId | None, apart: bool, is_file: bool
) -> None:
    task = Task(item_id, path, original, source, listed, apart, is_file)
    (back, again) = pickle.loads(pickle.dumps([task, task], pickle.HIGHEST_PROTOCOL))
    assert back == task and again == task
    assert type(back) is Task and back._asdict() == task._asdict()
    assert listed is None or type(back.listed_from) is DirId
