"""What every adapter's state shares: the table from a trainable weight to its slow copies, and
how a sync splits the weights into pieces."""

# A sync that does not write in place (XLA's outputs, TensorFlow's or an eager backend's
# temporaries) goes over the weights in pieces of at most this many bytes, one after the other:
# one piece's new buffers are alive at a time, not the whole model's.
PIECE_BYTES = 1 << 26  # 64 MiB


def pieces(sizes, limit):
    """Indices ``0 .. len(sizes) - 1`` in consecutive groups whose ``sizes`` add up to at most
    ``limit`` (a group holds at least one index)."""
    group, total = [], 0
    for i, size in enumerate(sizes):
        if group and total + size > limit:
            yield group
            group, total = [], 0
        group.append(i)
        total += size
    if group:
        yield group


class SlotTable:
    """``self._slots``: id(weight) -> (weight, [slow copy of each level, then any other copy
    the state keeps of it]); ``self.counter``: the step counter.

    Both state classes (``_tf.TFState``, ``_keras3.Keras3State``) take a step in the same three
    calls: ``prepare`` (before the optimizer is hooked: every trainable weight gets its slow
    copies), ``anchor_before`` (before the inner update: at the first one, the weights become
    the slow weights) and ``sync_after`` (after it: count the update, and at the end of a period
    move the slow weights and reset the fast ones, ``_rule``)."""

    def __init__(self):
        self._slots = {}
        self.applied = None  # ids of the weights the last update was applied to

    def check_applied(self, weights):
        """Called with the weights of each update as its step is built: ValueError if they do
        not include every weight of the previous update. One counter counts the updates as a
        whole and a sync moves the weights of the update that ends a period, so updates taking
        turns over different groups of weights would leave some unsynced. A group that grows
        (weights made trainable) is fine; ``applied = None`` (a compile) starts over."""
        ids = set(id(w) for w in weights)
        if self.applied is not None and not ids.issuperset(self.applied):
            raise ValueError(
                "Lookahead counts the updates of its optimizer as a whole and syncs the weights "
                "of the update that ends a period, so it cannot follow one optimizer applied to "
                f"different groups of weights in turn: this update has {len(ids)} weights, "
                f"{len(self.applied - ids)} of the {len(self.applied)} "
                "of the previous one are not among them. Give each group its own optimizer, "
                "each wrapped in its own LookaheadOptimizer (as for a GAN's discriminator and "
                "generator). After making weights non-trainable, compile again (inject) or "
                "compile with a new LookaheadOptimizer.")
        self.applied = ids

    def slow(self, weight, level=0):
        entry = self._slots.get(id(weight))
        if entry is None:
            name = getattr(weight, "path", None) or weight.name
            raise RuntimeError(
                f"Lookahead has no slow copy of the weight {name!r}: it was not trainable when "
                "Lookahead was injected or the model last compiled. Call model.compile(...) "
                "after changing which weights are trainable.")
        return entry[1][level]

    def weights(self):
        """Every weight that has copies, in the order they were added."""
        return [weight for weight, _ in self._slots.values()]

    def slow_weights(self, weights, level=0):
        return [self.slow(w, level) for w in weights]

    def anchor_pairs(self, weights):
        """``(slow copy, weight)`` for every slow level of every weight: what the anchor at
        the first update copies."""
        pairs = []
        for level in range(len(self.levels)):  # a loop: TF 2.0's AutoGraph (a user's own
            pairs += zip(self.slow_weights(weights, level), weights)  # tf.function) fails on
        return pairs  # a nested comprehension

    def copies(self, weight):
        """Every variable the state keeps for ``weight``."""
        self.slow(weight)  # the error above for a weight without copies
        return list(self._slots[id(weight)][1])

    def state_variables(self, weights):
        """The whole state, in a fixed order: the counter, then each weight's copies."""
        return [self.counter] + [v for w in weights for v in self.copies(w)]
