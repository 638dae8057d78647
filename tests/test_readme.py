"""Every ```python block of README.md and README_zh.md runs as written.

A README's blocks run in order in one namespace, as a reader pastes them into one session: the
quickstart defines ``model``, ``x`` and ``y``, and later blocks use them. A block whose first line
names a stack runs on that stack only (``STACK_LINES``); the others are Keras 3 code and run on
every Keras 3 backend. Each README runs in a new Keras session, in a temporary directory (blocks
save files). Which envs run this test: those that set KLA_README=1 (tox.ini), one per kind of
block.
"""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READMES = ("README.md", "README_zh.md")

pytestmark = pytest.mark.once


def _is_keras3(stack):
    return stack.family == "keras3"


#: a block's first line (its start) -> whether the block runs on the stack
STACK_LINES = {
    "# on TensorFlow": lambda s: _is_keras3(s) and s.backend == "tensorflow",
    "# on PyTorch": lambda s: _is_keras3(s) and s.backend == "torch",
    "# on JAX": lambda s: _is_keras3(s) and s.backend == "jax",
    "# on tf.keras 2.11 - 2.15 or tf_keras": lambda s: s.family == "tf" and s.tf_minor >= (2, 11),
    "# TensorFlow graph code": lambda s: s.tf is not None or _tensorflow_importable(),
    "# Keras 3": _is_keras3,
}


def _tensorflow_importable():
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None


def blocks(name):
    """[(line number, code)] of the README's ```python blocks."""
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        text = f.read()
    return [(text.count("\n", 0, m.start()) + 2, m.group(1))
            for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


def runs_on(code, stack):
    first = code.split("\n", 1)[0]
    for start, applies in STACK_LINES.items():
        if first.startswith(start):
            return applies(stack)
    return _is_keras3(stack)


def test_blocks_are_tagged_with_known_stacks():
    """A first-line comment that looks like a stack tag but is not one would silently make its
    block Keras 3 code: every block starting "# on " must use a known tag."""
    for name in READMES:
        for line, code in blocks(name):
            first = code.split("\n", 1)[0]
            if first.startswith("# on "):
                assert any(first.startswith(start) for start in STACK_LINES), \
                    "{} line {}: unknown stack line {!r}".format(name, line, first)


@pytest.mark.parametrize("name", READMES)
def test_code_blocks_run(stack, name, tmp_path, monkeypatch, request, capsys):
    if not os.environ.get("KLA_README"):
        pytest.skip("the README's blocks run in the envs that set KLA_README=1 (tox.ini), one "
                    "per kind of block")
    if request.config.getoption("--tf-mode") != "default":
        pytest.skip("the README's blocks run in TensorFlow's default mode (this run: {})".format(
            stack.label))
    found = blocks(name)
    assert len(found) >= 7, "{}: {} python blocks".format(name, len(found))
    mine = [(line, code) for line, code in found if runs_on(code, stack)]
    if not mine:
        pytest.skip("no block of {} is for {}".format(name, stack.label))
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    for line, code in mine:
        try:
            exec(compile(code, "{} line {}".format(name, line), "exec"), namespace)
        except Exception as error:
            raise AssertionError("{}, the block at line {}, fails on {}: {!r}".format(
                name, line, stack.label, error)) from error
    if _is_keras3(stack):
        assert "slow weights: accuracy" in capsys.readouterr().out
