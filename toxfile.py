"""tox plugin, loaded by tox from the project root: makes pyenv's interpreters findable.

The matrix needs Python 3.7 (TensorFlow 1.14 - 2.0). Where pyenv is installed, its shims answer
``python3.7`` only when ``PYENV_VERSION`` names a 3.7, and tox hands interpreter discovery only the
variables in ``pass_env`` (PATH among them). So this puts the ``bin`` folder of the newest installed
patch of every minor on PATH, after the folder of the Python running tox, so tox finds each
interpreter without the user setting anything. Where pyenv is absent this does nothing and tox
searches PATH as usual.
"""
import os
import re
import sys


def _pyenv_version_dirs():
    root = os.environ.get("PYENV_ROOT") or os.path.join(os.path.expanduser("~"), ".pyenv")
    versions = os.path.join(root, "versions")
    try:
        names = os.listdir(versions)
    except OSError:
        return []
    newest = {}
    for name in names:
        match = re.match(r"^(\d+)\.(\d+)\.(\d+)$", name)
        if match:
            key = tuple(int(p) for p in match.groups())
            if key[:2] not in newest or key > newest[key[:2]][0]:
                newest[key[:2]] = (key, name)
    return [os.path.join(versions, name, "bin") for _, name in sorted(newest.values(), reverse=True)]


def _extend_path():
    found = _pyenv_version_dirs()
    if not found:
        return
    own = os.path.dirname(os.path.realpath(sys.executable))
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    extra = [d for d in found if d not in path and d != own]
    os.environ["PATH"] = os.pathsep.join([own] + extra + [p for p in path if p != own])


_extend_path()
