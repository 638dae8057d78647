"""Run a benchmark's child in a fresh Python process (``first_step.py``, ``memory.py``)."""
import json
import os
import subprocess
import sys


def run(script, arguments, label, env=None):
    """``python script *arguments`` in a new process (with ``env`` added to this one's
    environment); returns its last stdout line, parsed as JSON. A child that fails stops the
    benchmark with ``label`` and the end of its stderr."""
    out = subprocess.run([sys.executable, script] + [str(a) for a in arguments],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                         env=dict(os.environ, **(env or {})))
    if out.returncode:
        raise SystemExit("{} failed:\n{}".format(label, out.stderr[-3000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])
