"""What every adapter's state shares: the table from a trainable weight to its slow copies."""


class SlotTable(object):
    """``self._slots``: id(weight) -> (weight, [slow copy of each level, then any other copy
    the state keeps of it]); ``self.counter``: the step counter."""

    def __init__(self):
        self._slots = {}

    def slow(self, weight, level=0):
        entry = self._slots.get(id(weight))
        if entry is None:
            raise RuntimeError(
                "Lookahead has no slow copy of the weight {!r}: it was not trainable when "
                "Lookahead was injected or the model last compiled. Call model.compile(...) "
                "after changing which weights are trainable.".format(
                    getattr(weight, "path", None) or weight.name))
        return entry[1][level]

    def weights(self):
        """Every weight that has copies, in the order they were added."""
        return [weight for weight, _ in self._slots.values()]

    def slow_weights(self, weights, level=0):
        return [self.slow(w, level) for w in weights]

    def copies(self, weight):
        """Every variable the state keeps for ``weight``."""
        self.slow(weight)  # the error above for a weight without copies
        return list(self._slots[id(weight)][1])

    def state_variables(self, weights):
        """The whole state, in a fixed order: the counter, then each weight's copies."""
        return [self.counter] + [v for w in weights for v in self.copies(w)]
