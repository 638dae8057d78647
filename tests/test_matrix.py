"""The supported table (``compat.STACKS``) is what tox.ini proves and what the README shows.

tox.ini is read as text (no tox needed): each env's stack comes from its factors and the version
its ``deps`` pin. Every env must lie inside a row of the table, and every row must be proven:
each release of its range by an env (for Keras 3 each minor), the whole suite (not ``-m core``)
on its first and last release (Keras 3: on each backend), and each Python it names.
"""
import configparser
import os
import re

import pytest

from keras_lookahead import compat
from keras_lookahead.compat import _bounds, _in_range, _minor

pytestmark = pytest.mark.core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")


def _tox():
    path = os.path.join(ROOT, "tox.ini")
    if not os.path.exists(path):
        pytest.skip("no tox.ini next to tests/ (an installed copy of the tests): nothing to check")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


def _lines(value):
    return [line.strip() for line in value.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _applies(condition, factors):
    """tox's factor conditions: ``a-b,c`` is (a and b) or c; ``!a`` is not a."""
    for alternative in condition.split(","):
        if all((f[1:] not in factors) if f.startswith("!") else (f in factors)
               for f in alternative.strip().split("-")):
            return True
    return False


def _pins(deps, factors):
    pins = {}
    for line in deps:
        condition, sep, requirement = line.partition(": ")
        if not sep:
            condition, requirement = "", line
        if condition and not _applies(condition, factors):
            continue
        match = re.match(r"([A-Za-z0-9_.\-\[\]]+)==([0-9.]+)", requirement)
        if match:
            pins[re.sub(r"\[.*\]", "", match.group(1)).replace("_", "-").lower()] = match.group(2)
    return pins


def envs():
    """[(name, row's keras, version, python, backend, whole suite?)] for tox.ini's env_list."""
    tox = _tox()
    deps = _lines(tox["testenv"]["deps"])
    found = []
    for name in _lines(tox["tox"]["env_list"]):
        factors = set(name.split("-"))
        pins = _pins(deps, factors)
        python = re.match(r"py(\d)(\d+)", name)
        python = "{}.{}".format(python.group(1), python.group(2))
        if "tfkeras" in factors:
            keras, version = "tf.keras", pins["tensorflow"]
        elif "tfk" in factors:
            keras, version = "tf_keras", pins["tf-keras"]
        elif pins.get("keras", "").startswith("3."):
            keras, version = "Keras 3", pins["keras"]
        else:
            keras, version = "standalone Keras", pins["keras"]
        backend = next((b for b in BACKENDS if b in factors), "tensorflow")
        found.append((name, keras, version, python, backend, "core" not in factors))
    return found


def _row(keras):
    row, = [s for s in compat.STACKS if s.keras == keras]
    return row


def test_every_env_is_inside_the_table():
    for name, keras, version, python, _, _ in envs():
        row = _row(keras)
        assert _in_range(version, _bounds(row)), \
            "{}: {} {} is outside the table's {} - {}".format(name, keras, version, row.first,
                                                              row.last)
        assert python in row.pythons, "{}: Python {} is not in the table's {} for {}".format(
            name, python, row.pythons, keras)


def _release_minors(first, last):
    """Every (major, minor) from first to last that exists (TF: 1.14, 1.15, 2.0, ...)."""
    first, last = _minor(first), _minor(last)
    return [(major, minor) for major in range(first[0], last[0] + 1)
            for minor in range(first[1] if major == first[0] else 0,
                               (last[1] if major == last[0] else 15) + 1)]


@pytest.mark.parametrize("row", compat.STACKS, ids=[s.keras for s in compat.STACKS])
def test_every_row_is_proven(row):
    mine = [e for e in envs() if e[1] == row.keras]
    minors = {_minor(e[2]) for e in mine}
    if row.first.count(".") == 2:  # standalone Keras: exactly its two releases
        assert {e[2] for e in mine} == {row.first, row.last}
    else:
        missing = [m for m in _release_minors(row.first, row.last) if m not in minors]
        assert not missing, "{}: no env for {}".format(row.keras, missing)
    for python in row.pythons:
        assert any(e[3] == python for e in mine), "{}: no env on Python {}".format(
            row.keras, python)
    backends = BACKENDS if row.keras == "Keras 3" else ("tensorflow",)
    for end in (row.first, row.last):
        for backend in backends:
            assert any(e[5] and e[4] == backend and _minor(e[2]) == _minor(end) for e in mine), \
                "{} {}: the whole suite runs in no env on {}".format(row.keras, end, backend)


def test_readme_shows_the_table():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert compat.supported_markdown() in readme
