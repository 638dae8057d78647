"""What every ``LookaheadOptimizer`` takes from the optimizer it wraps, on any Keras."""


class InnerPassThrough:
    """``iterations`` and ``learning_rate`` are the inner optimizer's (``self.inner_optimizer``),
    so schedules, ``ReduceLROnPlateau`` and anything reading the step count see the optimizer
    that takes the steps. Mixed in before the Keras optimizer base."""

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @iterations.setter
    def iterations(self, variable):
        self.inner_optimizer.iterations = variable

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.inner_optimizer.learning_rate = value
