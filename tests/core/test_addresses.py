"""The one canonical address key (core/addresses.py, invariant 12): every spelling of an address
is one key, the key of a key is itself, and the ingest fast path agrees with the validator."""

from __future__ import annotations

from email.utils import parseaddr

import idna
import pytest
from chalicelib.core import addresses, keys
from chalicelib.core.addresses import InvalidAddress, for_display, key, parse, prefix_key
from hypothesis import assume, given
from hypothesis import strategies as st

HENRY = "henry@xn--bcher-kva.de"
SPELLINGS = [
    "henry@bücher.de",
    "henry@xn--bcher-kva.de",
    "Henry@BÜCHER.de",
    "HENRY@XN--BCHER-KVA.DE",
    "Henry Example <henry@Bücher.DE>",
    '"Henry, Example" <HENRY@xn--bcher-kva.de>',
    "  henry@bücher.de ",
    "henry@ｂüｃｈｅｒ.de",  # full-width letters: UTS #46 maps them to ASCII
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_of_an_address_has_one_ascii_lowercase_key(spelling: str) -> None:
    assert key(spelling) == HENRY
    assert parse(spelling).key == HENRY
    assert keys.recipient_pk("t1", spelling) == f"T#t1#R#{HENRY}"


def test_the_ses_form_keeps_the_local_part_and_encodes_the_domain() -> None:
    parsed = parse("Henry Example <Henry@Bücher.de>")
    assert (parsed.ascii, parsed.key, parsed.display_name) == (
        "Henry@xn--bcher-kva.de",
        HENRY,
        "Henry Example",
    )


def test_idna_is_non_transitional_as_email_validator_and_browsers_encode_it() -> None:
    # straße.de and strasse.de are two domains: the key must not merge them.
    assert key("a@straße.de") == "a@xn--strae-oqa.de"
    assert key("a@strasse.de") == "a@strasse.de"


@pytest.mark.parametrize(
    "raw", ["ü@example.de", "Name <jörg@example.de>", "not-an-address", "a@b", "a@b-.com"]
)
def test_parse_refuses_what_ses_cannot_send_to(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        parse(raw)


def test_an_internationalised_local_part_is_refused_saying_why() -> None:
    with pytest.raises(InvalidAddress, match="before the @-sign"):
        parse("jörg@example.de")


def test_display_and_prefix_forms() -> None:
    assert for_display(HENRY) == "henry@bücher.de"
    assert for_display("a@example.com") == "a@example.com"
    assert for_display("a@xn--zz.de") == "a@xn--zz.de"  # not IDNA: shown as stored
    assert prefix_key("Henry@Bücher") == "henry@xn--bcher-kva"
    assert HENRY.startswith(prefix_key("HENRY@BÜCHER"))
    assert prefix_key("Henry@") == "henry@"
    with pytest.raises(InvalidAddress):
        prefix_key("jörg@")


def test_ingest_does_not_load_the_validator_for_the_addresses_ses_reports() -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        f"import sys; sys.path[:0] = [{str(ROOT / 'app')!r}]\n"
        "from chalicelib.core.addresses import key\n"
        "assert key('Henry@XN--BCHER-KVA.DE') == 'henry@xn--bcher-kva.de'\n"
        "print('email_validator' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------- properties

# Letters whose upper case lowers back to themselves (not ß, whose upper case is SS: another
# domain), from several scripts, for labels of internationalised domains.
_LETTERS = "abcdefghijklmnopqrstuvwxyzäöüéèñçåøłžšđ" + "αβγδεζηθ" + "абвгдежз" + "日本語"
_label = st.text(alphabet=_LETTERS + "0123456789", min_size=1, max_size=12)
_local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,15}", fullmatch=True).filter(
    lambda s: ".." not in s and not s.endswith(".")
)


@st.composite
def idn_address(draw: st.DrawFn) -> tuple[str, str]:
    """(local part, Unicode domain) of an address email-validator accepts."""
    labels = draw(st.lists(_label, min_size=1, max_size=3))
    domain = ".".join([*labels, draw(st.sampled_from(["de", "com", "xn--p1ai", "рф", "jp"]))])
    local = draw(_local)
    try:
        parse(f"{local}@{domain}")
    except InvalidAddress:
        assume(False)
    return local, domain


@given(idn_address(), st.sampled_from(["", "Name ", '"Doe, J." ']))
def test_property_every_spelling_maps_to_one_key(parts: tuple[str, str], name: str) -> None:
    local, domain = parts
    canonical = key(f"{local}@{domain}")
    punycode = idna.encode(domain, uts46=True).decode()
    spellings = [
        f"{local}@{domain}",
        f"{local}@{punycode}",
        f"{local.upper()}@{domain.upper()}",
        f"{local}@{punycode.upper()}",
        f"{name}<{local}@{domain}>" if name else f"<{local}@{domain}>",
    ]
    assert {key(s) for s in spellings} == {canonical}
    assert canonical == canonical.lower() and canonical.isascii()
    assert key(canonical) == canonical


@given(st.emails())
def test_property_the_fast_path_agrees_with_the_validator(address: str) -> None:
    try:
        parsed = parse(address)
    except InvalidAddress:
        return  # special-use domains, lengths: refused by the API, so never compared
    assert key(address) == parsed.key
    assert key(address.upper()) == parsed.key
    assert key(f"Someone <{address}>") == parsed.key
    assert key(parsed.key) == parsed.key


@given(st.text(max_size=80))
def test_property_the_key_of_a_key_is_itself(text: str) -> None:
    assert key(key(text)) == key(text)


_ASCII = st.text(alphabet=st.characters(codec="ascii"), max_size=60)


@given(
    st.one_of(
        _ASCII,
        st.emails(),
        st.emails().map(str.upper),
        st.tuples(_ASCII, st.emails()).map(lambda p: f"{p[0]}<{p[1]}>"),
        st.tuples(_ASCII, st.emails()).map(lambda p: f'"{p[0]}"{p[1]}'),
    )
)
def test_property_ascii_addresses_as_ingest_reads_them_were_already_canonical(text: str) -> None:
    """Why event rows and aggregates need no re-keying (suppression/rekey.py): ingest stored
    `address.lower()` of what SES reports (ASCII: SES takes IDN domains only in punycode), after
    `parseaddr` and refusing whitespace; for every such address the canonical key is the same."""
    bare = parseaddr(text)[1] or text
    if "@" not in bare or any(c.isspace() for c in bare) or "\x00" in bare:
        return
    # parseaddr('"<a@b.cz>') answers '<a@b.cz>', brackets kept (found by Hypothesis): no address
    # SES reports has a bracket left after parseaddr, so ingest never stored one.
    if "<" in bare or ">" in bare:
        return
    assert addresses.key(bare) == bare.lower()
