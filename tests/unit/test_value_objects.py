"""Reference, Metadata and IdempotencyKey: `create` is `Ok` exactly when the input is valid."""

from __future__ import annotations

import string
import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.domain.errors import IdempotencyKeyInvalid
from gateway.domain.result import Err, Ok
from gateway.domain.value_objects import IdempotencyKey, Metadata, Reference

NOT_PRINTABLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"}


def printable(text: str) -> bool:
    return all(c == " " or unicodedata.category(c) not in NOT_PRINTABLE for c in text)


@given(st.one_of(st.text(max_size=60), st.text(string.printable, min_size=45, max_size=55)))
@example("")
@example("ORD-001")
@example("x" * 50)
@example("x" * 51)
@example("tab\there")
def test_reference_is_ok_iff_a_printable_string_of_1_to_50_chars(raw: str) -> None:
    result = Reference.create(raw)
    if 1 <= len(raw) <= 50 and printable(raw):
        assert result == Ok(Reference(raw))
    else:
        assert isinstance(result, Err)
        assert (result.error.param, result.error.code) == ("reference", "reference_invalid")


@given(st.one_of(st.integers(), st.none(), st.lists(st.text(), max_size=2)))
def test_reference_rejects_non_strings(raw: object) -> None:
    assert isinstance(Reference.create(raw), Err)


keys = st.one_of(st.text(min_size=0, max_size=45), st.integers())
values = st.one_of(st.text(max_size=10), st.text(min_size=495, max_size=505), st.integers())
metadata = st.dictionaries(keys, values, max_size=23)


def metadata_oracle(raw: dict[object, object]) -> bool:
    return len(raw) <= 20 and all(
        isinstance(k, str)
        and 1 <= len(k) <= 40
        and isinstance(v, str)
        and len(v) <= 500
        and "\x00" not in k + v
        for k, v in raw.items()
    )


@given(metadata)
@example({})
@example({f"k{i}": "v" for i in range(20)})
@example({f"k{i}": "v" for i in range(21)})
@example({"k" * 40: "v" * 500})
@example({"k" * 41: "v"})
@example({"k": "v" * 501})
@example({"k": "a\x00b"})
@example({"\x00": "v"})
def test_metadata_is_ok_iff_at_most_20_short_keys_with_short_string_values(
    raw: dict[object, object],
) -> None:
    result = Metadata.create(raw)
    if metadata_oracle(raw):
        assert isinstance(result, Ok)
        assert dict(result.value.entries) == raw
    else:
        assert isinstance(result, Err)
        assert (result.error.param, result.error.code) == ("metadata", "metadata_invalid")


def test_metadata_cannot_be_changed_through_the_input_or_the_value() -> None:
    raw = {"customer": "c_42"}
    result = Metadata.create(raw)
    assert isinstance(result, Ok)
    raw["customer"] = "changed"
    assert result.value.entries == {"customer": "c_42"}
    assert not hasattr(result.value.entries, "__setitem__")
    assert Metadata.empty().entries == {}


@given(st.one_of(st.lists(st.text(), max_size=2), st.text(max_size=5), st.none(), st.integers()))
def test_metadata_rejects_non_objects(raw: object) -> None:
    assert isinstance(Metadata.create(raw), Err)


PRINTABLE_ASCII = "".join(chr(code) for code in range(0x20, 0x7F))


@given(
    st.one_of(
        st.text(PRINTABLE_ASCII, max_size=260),
        st.text(PRINTABLE_ASCII, min_size=250, max_size=260),
        st.text(max_size=20),
    )
)
@example("")
@example(" ")
@example("a" * 255)
@example("a" * 256)
@example("key\x7f")
@example("clé")
def test_idempotency_key_is_ok_iff_1_to_255_printable_ascii_chars(raw: str) -> None:
    valid = 1 <= len(raw) <= 255 and all(c in PRINTABLE_ASCII for c in raw)
    result = IdempotencyKey.create(raw)
    if valid:
        assert result == Ok(IdempotencyKey(raw))
    else:
        assert isinstance(result, Err)
        assert isinstance(result.error, IdempotencyKeyInvalid)
