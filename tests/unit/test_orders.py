"""Orders: made, co-signed, checked; every refusal reason by name, and garbage never crashes."""

from __future__ import annotations

import base64
import copy
import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.daemon import order as orders
from agent.daemon.order import (
    BAD_SIGNATURE,
    EXPIRED,
    INSUFFICIENT_SIGNATURES,
    MALFORMED,
    NOT_YET_VALID,
    OTHER_HOST,
    OVERSIZED,
    REFUSALS,
    SECOND,
    UNKNOWN_ACTION,
    UNTRUSTED_ISSUER,
    OrderRefused,
    OrderTrust,
    check,
    cosign,
    new_order,
    serialize,
)
from agent.daemon.statusdoc import check_status, make_status, status_bytes
from manifest.errors import UsageError
from manifest.format.canonical import canonical_bytes
from manifest.format.timefmt import now_ns
from manifest.signing.keys import Identity, Signer, fingerprint

HOST = "clerk-pc-0123456789abcdef0123456789abcdef"


def signer(name: str) -> Signer:
    key = Ed25519PrivateKey.generate()
    return Signer(Identity(name, "IT security", "City IT", fingerprint(key.public_key())), key)


ALICE, BOB, MALLORY = signer("Alice"), signer("Bob"), signer("Mallory")


def trust(*who: Signer, **require: int) -> OrderTrust:
    return OrderTrust({s.fingerprint: s.identity for s in who}, require)


def make(action: str = "isolate", by: Signer = ALICE, **kw: object) -> dict:
    base: dict = {"signer": by, "action": action, "case": "OKC-2026-0042", "hosts": [HOST], "reason": "test"}
    base.update(kw)
    return new_order(**base)


def refusal(data: bytes, t: OrderTrust | None = None, **kw: object) -> str:
    with pytest.raises(OrderRefused) as info:
        check(data, trust=t or trust(ALICE, BOB), host=HOST, **kw)  # type: ignore[arg-type]
    assert info.value.code in REFUSALS
    return info.value.code


def resign(doc: dict, by: Signer = ALICE) -> bytes:
    """The order changed and signed again by `by` (a well-signed, differently-formed order)."""
    doc = {k: v for k, v in doc.items() if k != "signatures"}
    doc["issuer"] = by.identity.as_actor()
    doc["signatures"] = [orders._signature(doc, by)]
    return canonical_bytes(doc)


def test_a_fresh_order_from_a_trusted_issuer_is_accepted() -> None:
    doc = make(arguments={"allow": ["203.0.113.5:443/tcp"]})
    got = check(serialize(doc), trust=trust(ALICE), host=HOST)
    assert got.id == doc["id"] and got.action == "isolate" and got.signers == [ALICE.fingerprint]
    assert got.arguments == {"allow": ["203.0.113.5:443/tcp"]}
    assert str(uuid.UUID(got.id)) == got.id
    assert got.not_after_ns - now_ns() <= 3600 * SECOND


def test_a_group_order_reaches_members_only() -> None:
    doc = make(hosts=[], groups=["clerks"])
    assert check(serialize(doc), trust=trust(ALICE), host=HOST, groups=["clerks"]).id == doc["id"]
    assert refusal(serialize(doc), groups=["police"]) == OTHER_HOST


def test_refused_when_a_byte_of_the_body_changes() -> None:
    data = serialize(make()).replace(b'"reason":"test"', b'"reason":"tesT"')
    assert refusal(data) == BAD_SIGNATURE


def test_refused_when_the_public_key_is_swapped() -> None:
    doc = make()
    doc["signatures"][0]["public_key"] = MALLORY.public_b64()
    assert refusal(serialize(doc)) == BAD_SIGNATURE


def test_refused_when_mallory_signs_in_alices_name() -> None:
    doc = make()
    forged = {k: v for k, v in doc.items() if k != "signatures"}
    sig = dict(doc["signatures"][0])
    sig["public_key"] = MALLORY.public_b64()
    sig["key"] = MALLORY.fingerprint
    sig["sig"] = base64.b64encode(MALLORY.sign(orders.body_bytes(forged))).decode()
    forged["signatures"] = [sig]
    assert refusal(canonical_bytes(forged)) == BAD_SIGNATURE  # the issuer named is not the signer


def test_refused_when_unsigned() -> None:
    doc = make()
    doc["signatures"] = []
    assert refusal(serialize(doc)) == BAD_SIGNATURE
    del doc["signatures"]
    assert refusal(serialize(doc)) == BAD_SIGNATURE


def test_refused_from_an_issuer_not_in_orders_trusted() -> None:
    assert refusal(serialize(make(by=MALLORY))) == UNTRUSTED_ISSUER


def test_two_person_rule() -> None:
    one = make()
    t = trust(ALICE, BOB, isolate=2)
    assert refusal(serialize(one), t) == INSUFFICIENT_SIGNATURES
    both = cosign(one, BOB)
    assert check(serialize(both), trust=t, host=HOST).signers == [ALICE.fingerprint, BOB.fingerprint]
    # an untrusted second signer does not count
    assert refusal(serialize(cosign(one, MALLORY)), t) == INSUFFICIENT_SIGNATURES
    # nor does the same key twice
    twice = dict(one)
    twice["signatures"] = [one["signatures"][0], one["signatures"][0]]
    assert refusal(serialize(twice), t) == INSUFFICIENT_SIGNATURES
    with pytest.raises(UsageError, match="already signed"):
        cosign(one, ALICE)
    # the rule is per action: restore needs one here
    assert check(serialize(make("restore")), trust=t, host=HOST).action == "restore"


def test_cosigning_an_altered_order_is_refused() -> None:
    doc = make()
    doc["reason"] = "changed after signing"
    with pytest.raises(OrderRefused):
        cosign(doc, BOB)


def test_expired_and_not_yet_valid() -> None:
    now = now_ns()
    old = make(issued_ns=now - 7200 * SECOND, not_before_ns=now - 7200 * SECOND)
    assert refusal(serialize(old)) == EXPIRED
    future = make(not_before_ns=now + 3600 * SECOND)
    assert refusal(serialize(future)) == NOT_YET_VALID
    # a host clock a minute behind still takes an order issued "now"
    assert check(serialize(make(not_before_ns=now + 60 * SECOND)), trust=trust(ALICE), host=HOST)
    assert check(serialize(future), trust=trust(ALICE), host=HOST, now=now + 3601 * SECOND)


def test_other_host() -> None:
    assert refusal(serialize(make(hosts=["other-pc-0123"]))) == OTHER_HOST


def test_validity_is_bounded() -> None:
    with pytest.raises(UsageError, match="7 days"):
        make(valid_ns=8 * 86400 * SECOND)
    doc = make()
    doc["not_after"] = "2099-01-01T00:00:00Z"
    assert refusal(resign(doc)) == MALFORMED


def test_unknown_action_signed_by_a_trusted_issuer() -> None:
    doc = make()
    doc["action"] = "format-disk"
    assert refusal(resign(doc)) == UNKNOWN_ACTION


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d.update(format="sealbox-order/9"), "format"),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d.pop("case"), "missing"),
        (lambda d: d.update(id="not-a-uuid"), "UUID"),
        (lambda d: d.update(issued="yesterday"), "RFC 3339"),
        (lambda d: d.update(case="../etc"), "case"),
        (lambda d: d.update(targets={"hosts": []}), "targets"),
        (lambda d: d.update(targets={"hosts": [], "groups": []}), "no host"),
        (lambda d: d.update(arguments={"allow": "203.0.113.5"}), "list"),
        (lambda d: d.update(arguments={"rm": ["-rf"]}), "not one isolate takes"),
        (lambda d: d.update(arguments={"allow_dns": 1}), "bool"),
        (lambda d: d.update(not_after=d["not_before"]), "not after"),
    ],
)
def test_malformed_orders_name_what_is_wrong(change: object, why: str) -> None:
    doc = make()
    change(doc)  # type: ignore[operator]
    with pytest.raises(OrderRefused) as info:
        check(resign(doc), trust=trust(ALICE), host=HOST)
    assert info.value.code == MALFORMED and why in info.value.reason


def test_an_issuer_without_a_role_is_malformed() -> None:
    doc = make()
    del doc["issuer"]["role"]
    with pytest.raises(OrderRefused, match="issuer is not"):
        check(serialize(doc), trust=trust(ALICE), host=HOST)


def test_malformed_json_shapes() -> None:
    good = serialize(make())
    for data in (
        b"",
        b"[]",
        b"null",
        good[: len(good) // 2],
        b'{"a": 1, "a": 2}',
        b'{"id": 1.5}',
        b'{"x": NaN}',
        b"\xff\xfe",
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 40 + b"1" + b"}" * 40,
    ):
        assert refusal(data) == MALFORMED, data[:40]


def test_oversized() -> None:
    doc = make()
    doc["reason"] = "x" * orders.MAX_BYTES
    assert refusal(serialize(doc)) == OVERSIZED


def test_the_refusal_names_the_order_when_it_can() -> None:
    doc = make(by=MALLORY)
    with pytest.raises(OrderRefused) as info:
        check(serialize(doc), trust=trust(ALICE), host=HOST)
    assert info.value.order_id == doc["id"]
    assert orders.peek_id(serialize(doc)) == doc["id"] and orders.peek_id(b"garbage") is None


def test_order_file_is_canonical_json() -> None:
    data = serialize(make())
    assert data == canonical_bytes(json.loads(data)) + b"\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_are_refused_never_crash(data: bytes) -> None:
    with pytest.raises(OrderRefused) as info:
        check(data, trust=trust(ALICE), host=HOST)
    assert info.value.code in REFUSALS


SIGNED = make()
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(orders._FIELDS)), _json)
def test_any_field_replaced_by_any_json_is_refused(name: str, value: object) -> None:
    doc = copy.deepcopy(SIGNED)
    original = doc[name]
    doc[name] = value
    try:
        check(serialize(doc), trust=trust(ALICE), host=HOST)
    except OrderRefused as exc:
        assert exc.code in REFUSALS
    else:  # only the value that was signed may pass
        assert value == original


def test_status_documents_are_signed_and_checked() -> None:
    doc = make_status(ALICE, host=HOST, kind="refusal", order=str(uuid.uuid4()), code=EXPIRED, message="x")
    data = status_bytes(doc)
    assert check_status(data) == (doc, "")
    assert check_status(data.replace(b'"expired"', b'"done"'))[1] == "signature does not match"
    assert check_status(b"garbage")[1] == "not JSON"
