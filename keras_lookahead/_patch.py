"""Instance-level method patches that can be undone exactly.

Lookahead hooks a model or optimizer by shadowing one bound method with an attribute of the
instance. Keras and TensorFlow override ``__setattr__`` on models and optimizers to track what is
assigned; a hook is not state, so it is written around that tracking with ``object.__setattr__``.
Undoing a patch restores the instance dictionary exactly as it was.
"""

_MISSING = object()


class Patch:
    def __init__(self, obj, name, replacement):
        self.obj = obj
        self.name = name
        self.previous = vars(obj).get(name, _MISSING)
        object.__setattr__(obj, name, replacement)

    def undo(self):
        if self.previous is _MISSING:
            object.__delattr__(self.obj, self.name)
        else:
            object.__setattr__(self.obj, self.name, self.previous)
