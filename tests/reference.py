"""An independent numpy reference of the Lookahead rule (``docs/design.md``, section 1) and of
the inner optimizer on the small model the stack tests train. Nothing here imports
keras_lookahead."""
import numpy as np


class LookaheadReference:
    """Paper's Algorithm 1 around any inner update, written from its nested loops: the slow
    copy is taken at attach; after every k-th inner update the slow weights step towards the
    fast ones by alpha and the fast weights restart from them."""

    def __init__(self, weights, k, alpha):
        self.k, self.alpha, self.t = k, alpha, 0
        self.slow = [np.array(w, copy=True) for w in weights]

    def after_update(self, weights):
        self.t += 1
        if self.t % self.k:
            return weights
        self.slow = [s + np.float32(self.alpha) * (w - s) for s, w in zip(self.slow, weights)]
        return [np.array(s, copy=True) for s in self.slow]


class NestedLookaheadReference:
    """docs/design.md's nested Lookahead, from its two rules: every k updates an inner sync
    (phi <- phi + alpha (theta - phi); theta <- phi); right after every s-th inner sync,
    psi <- psi + h (phi - psi); phi <- psi; theta <- psi."""

    def __init__(self, weights, k, alpha, s, h):
        self.k, self.alpha, self.s, self.h = k, alpha, s, h
        self.t = self.inner_syncs = 0
        self.phi = [np.array(w, copy=True) for w in weights]
        self.psi = [np.array(w, copy=True) for w in weights]

    def after_update(self, weights):
        self.t += 1
        if self.t % self.k:
            return weights
        self.phi = [p + np.float32(self.alpha) * (w - p) for p, w in zip(self.phi, weights)]
        self.inner_syncs += 1
        if self.s and self.inner_syncs % self.s == 0:
            self.psi = [q + np.float32(self.h) * (p - q) for q, p in zip(self.psi, self.phi)]
            self.phi = [np.array(q, copy=True) for q in self.psi]
        return [np.array(p, copy=True) for p in self.phi]


def worked_trajectory(theta0, steps, k, alpha, delta=1.0, nested=None):
    """theta after each of ``steps`` inner updates that each add ``delta``."""
    if nested is None:
        la = LookaheadReference([np.float64(theta0)], k, alpha)
    else:
        la = NestedLookaheadReference([np.float64(theta0)], k, alpha, *nested)
    theta, out = [np.float64(theta0)], []
    for _ in range(steps):
        theta = la.after_update([theta[0] + delta])
        out.append(float(theta[0]))
    return out


class MLPReference:
    """Dense(3, tanh) -> Dense(1) on mean squared error, trained by SGD (optionally with
    momentum, Keras' form: v <- m v - lr g; w <- w + v), in float32 like Keras."""

    def __init__(self, weights, lr, momentum=0.0, accumulate=1):
        self.w = [np.array(w, dtype=np.float32) for w in weights]
        self.lr, self.momentum = np.float32(lr), np.float32(momentum)
        self.v = [np.zeros_like(w) for w in self.w]
        self.lookahead = None
        self.pullback, self.v_cached = "none", None
        # gradient accumulation: one update every `accumulate` calls of step(), on the mean
        self.accumulate, self.micro, self.acc = accumulate, 0, [np.zeros_like(w) for w in self.w]

    def attach(self, k, alpha, s=None, h=None, pullback="none"):
        """Lookahead from now; ``pullback`` acts on the momentum buffer v at every (inner)
        sync: "reset" zeroes it; "pullback" sets v <- alpha v + (1 - alpha) v_cached, then
        v_cached <- a copy of v (v_cached starts at zero)."""
        self.pullback = pullback
        self.v_cached = [np.zeros_like(w) for w in self.w]
        if s is None:
            self.lookahead = LookaheadReference(self.w, k, alpha)
        else:
            self.lookahead = NestedLookaheadReference(self.w, k, alpha, s, h)

    def grads(self, x, y):
        w1, b1, w2, b2 = self.w
        h = np.tanh(x @ w1 + b1)
        out = h @ w2 + b2
        d_out = np.float32(2.0) * (out - y) / np.float32(out.size)
        d_h = (d_out @ w2.T) * (np.float32(1.0) - h * h)
        return [x.T @ d_h, d_h.sum(0), h.T @ d_out, d_out.sum(0)]

    def step(self, x, y):
        g = self.grads(x, y)
        if self.accumulate > 1:
            self.acc = [a + gi for a, gi in zip(self.acc, g)]
            self.micro += 1
            if self.micro % self.accumulate:
                return
            g = [a / np.float32(self.accumulate) for a in self.acc]
            self.acc = [np.zeros_like(a) for a in self.acc]
        self.v = [self.momentum * v - self.lr * gi for v, gi in zip(self.v, g)]
        self.w = [w + v for w, v in zip(self.w, self.v)]
        if self.lookahead is not None:
            self.w = self.lookahead.after_update(self.w)
            if self.lookahead.t % self.lookahead.k == 0:
                if self.pullback == "reset":
                    self.v = [np.zeros_like(v) for v in self.v]
                elif self.pullback == "pullback":
                    a = np.float32(self.lookahead.alpha)
                    self.v = [a * v + (np.float32(1) - a) * c
                              for v, c in zip(self.v, self.v_cached)]
                    self.v_cached = [np.array(v, copy=True) for v in self.v]

    def fit(self, x, y, epochs, batch_size):
        for _ in range(epochs):
            for i in range(0, len(x), batch_size):
                self.step(x[i:i + batch_size], y[i:i + batch_size])
