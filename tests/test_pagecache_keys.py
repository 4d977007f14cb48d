"""pagecache/keys.py: one key per page, whatever its spelling; two pages never one key."""

import random
from urllib.parse import quote, urlencode

import pytest
from django.http import QueryDict
from hypothesis import given
from hypothesis import strategies as st

from pagecache.keys import accepted_encoding, canonical_query, page_key

# What a view reads: a search view reads `q` and `page`, in that order.
NAMES = ("q", "page")
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
paths = st.builds(lambda rest: "/" + rest, text)
# Parameters as a browser may send them: the view's own, repeated or not, and others it ignores.
params = st.lists(st.tuples(st.sampled_from([*NAMES, "utm_source", "ref", "Q", "q "]), text), max_size=6)


def _meaning(path, pairs):
    """What the view sees: the path and the last value of each parameter it reads, if not empty."""
    last = {}
    for name, value in pairs:
        last[name] = value
    return path, tuple((name, last[name]) for name in NAMES if last.get(name))


def _key(path, raw_query):
    return page_key(path, canonical_query(QueryDict(raw_query), NAMES))


def _spell(pairs, seed):
    """Spell a query another way: other parameters shuffled around, %20 or +, escapes in any case."""
    rng = random.Random(seed)
    ignored = [pair for pair in pairs if pair[0] not in NAMES]
    extra = [("utm_campaign", "x"), ("fbclid", "y")][: rng.randint(0, 2)]
    own = [pair for pair in pairs if pair[0] in NAMES]
    others = ignored + extra
    rng.shuffle(others)
    mixed = []
    while own or others:  # the view's parameters keep their relative order: the last one wins
        source = own if own and (not others or rng.random() < 0.5) else others
        mixed.append(source.pop(0))
    if rng.random() < 0.5:
        return urlencode(mixed)  # spaces as +
    return "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in mixed)  # spaces as %20


@given(paths, params, paths, params)
def test_two_different_pages_never_share_a_key(path_a, pairs_a, path_b, pairs_b):
    same_page = _meaning(path_a, pairs_a) == _meaning(path_b, pairs_b)
    assert (_key(path_a, urlencode(pairs_a)) == _key(path_b, urlencode(pairs_b))) == same_page


@given(paths, params, st.integers())
def test_every_spelling_of_a_page_shares_its_key(path, pairs, seed):
    assert _key(path, _spell(pairs, seed)) == _key(path, urlencode(pairs))


def test_a_value_cannot_forge_another_parameter():
    """A search for the text "linen&page=2" is not page 2 of a search for "linen"."""
    assert _key("/search/", "q=linen%26page%3D2") != _key("/search/", "q=linen&page=2")


def test_a_path_cannot_forge_a_query():
    assert page_key("/search/?q=x", "") != page_key("/search/", "q=x")


@pytest.mark.parametrize(
    "header, encoding",
    [
        ("gzip", "gzip"),
        ("gzip, deflate, br", "gzip"),
        ("GZIP;Q=0.5", "gzip"),
        ("x-gzip", "gzip"),
        ("*", "gzip"),
        ("br, *;q=0.1", "gzip"),
        ("", "identity"),
        ("identity", "identity"),
        ("br", "identity"),
        ("gzip;q=0", "identity"),
        ("gzip;q=0.0", "identity"),
        ("gzip;q=0.000", "identity"),
        ("gzip;q=0, *", "identity"),  # gzip named and refused: `*` does not bring it back
        ("*;q=0", "identity"),
        ("gzip;q=nonsense", "identity"),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header, encoding):
    assert accepted_encoding(header) == encoding
