"""The in-graph anchor and sync branches, for every Keras that runs on TensorFlow (tf.keras,
tf_keras, standalone Keras on TF 1.x, and Keras 3 on the TensorFlow backend).

Inside a TF2 function, every variable a step uses is one more argument of every call of the
function, whether the branch that uses it runs or not: with hundreds of weights that costs more
than the step's own work (a few microseconds per variable and call, measured). So the branches
reach the variables through one tensor of their resource handles, packed once, eagerly
(:class:`Reach`), run as one XLA-compiled function of those handles where TensorFlow can
(:func:`copy_branch`, :func:`sync_levels_branch`), and order themselves after the inner update by
explicit control dependencies (:func:`run_ordered`), since TensorFlow's automatic ones no longer
see which variables they touch. The arithmetic of a sync is ``_rule.py``'s. See
``docs/design.md``, section 2.
"""
import tensorflow as tf

from keras_lookahead import _rule
from keras_lookahead.compat import _slots
from keras_lookahead.compat._slots import pieces


class Reach:
    """How a branch reaches variables: ``reach = Reach()(variables)`` when the step is built,
    then ``reach()`` inside the branch gives, in order, objects with ``read_value()`` and
    ``assign(value, read_value=False)``.

    Inside a TF2 function (not under XLA, whose clusters take variables only as themselves, nor
    under a tf.distribute strategy, where a variable has a handle per replica), they are views
    of the resource handles in one tensor, stacked once, eagerly, for each list of variables:
    the function then captures one tensor instead of every variable (:func:`_packing`).
    Elsewhere (eager, TF1-style graphs), the variables themselves."""

    def __init__(self):
        self._packed = {}

    def __call__(self, variables):
        variables = list(variables)
        if not variables or not _packing():
            return lambda: variables
        key = tuple(id(v) for v in variables)
        entry = self._packed.get(key)
        if entry is None:
            with tf.init_scope():
                # kept with the variables, so that their ids cannot be reused meanwhile
                entry = self._packed[key] = (tf.stack([v.handle for v in variables]), variables)
        packed = entry[0]
        return lambda: [_View(handle, v) for handle, v in
                        zip(tf.unstack(packed, num=len(variables)), variables)]


class _View:
    """A variable reached through a resource handle tensor (:class:`Reach`)."""

    def __init__(self, handle, like):
        self.handle = handle
        self.dtype = like.dtype.base_dtype
        self.shape = like.shape

    def read_value(self):
        value = tf.raw_ops.ReadVariableOp(resource=self.handle, dtype=self.dtype)
        value.set_shape(self.shape)
        return value

    def assign(self, value, read_value=False):
        return tf.raw_ops.AssignVariableOp(resource=self.handle,
                                           value=tf.convert_to_tensor(value, self.dtype))


def _functions():
    """Whether TF2's function-building mode is on (not a TF1-style graph; TF 1.14 and 1.15 lack
    the public ``tf.compat.v1`` name)."""
    from tensorflow.python.framework import ops
    return ops.executing_eagerly_outside_functions()


def _packing():
    """Whether a TF2 function is being traced, outside XLA and tf.distribute (:class:`Reach`)."""
    if tf.executing_eagerly() or not _functions():
        return False
    if tf.distribute.has_strategy():
        return False
    from tensorflow.python.ops import control_flow_util  # TF's own test for jit_compile tracing
    return not control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def run_ordered(run, after=None):
    """``run()`` (the inner update) with its state-changing ops after ``after`` (a tensor, e.g.
    the anchor's), returning ``(its result, those ops)``: what the counter's increment, and so
    the sync, must follow. Branches that reach variables through handles (:class:`Reach`) are
    invisible to TensorFlow's automatic control dependencies, so the order is made explicit, on
    the ops that write and on nothing else (a control input on every op of the update stops
    Grappler's rewrites of it: about +30% a step on a 302-variable MLP, measured). Eagerly, ops
    run in program order and the list is empty."""
    if tf.executing_eagerly():
        return run(), []
    graph = tf.compat.v1.get_default_graph()
    known = len(graph.get_operations())
    if not _functions():
        # a TF1-style graph: every op of the update waits for the anchor (the Assign of a ref
        # variable is not marked stateful); what the update returns orders the count (the new
        # ops would include the initialisers of slots made in this update)
        with tf.control_dependencies([after] if after is not None else []):
            return run(), []
    result = run()
    writes = [op for op in graph.get_operations()[known:]
              if op.op_def.is_stateful and op.type != "ReadVariableOp"]
    if after is not None:
        for op in writes:
            op._add_control_input(after.op)
    return result, writes


def _fused(cache, key, body, variables):
    """``body(views)`` as one XLA-compiled function of the variables' handles (made once per
    ``key`` and kept in ``cache``), called with the handles. XLA fuses the element-wise work into
    one pass per variable, where TensorFlow's own kernels make temporaries (about 1.6x the time of
    the sync, measured); the call is one op in the step, whatever the number of variables."""
    compiled = cache.get(key)
    if compiled is None:
        likes = list(variables)

        def fused(*handles):
            body([_View(h, v) for h, v in zip(handles, likes)])
            return tf.constant(True)

        compiled = cache[key] = tf.function(fused, jit_compile=True, autograph=False)
    return compiled


def copy_branch(reach, cache, targets, sources):
    """A ``tf.cond`` branch writing each source's value into its target (the anchor). A source
    may feed several targets (one per slow level): XLA takes each variable once."""
    position = {}  # id(source) -> its index among the distinct sources
    unique = []
    for v in sources:
        if id(v) not in position:
            position[id(v)] = len(unique)
            unique.append(v)
    index = [position[id(v)] for v in sources]
    n = len(targets)
    get = reach(targets + unique)

    def copy(views):
        return [t.assign(views[n + i].read_value(), read_value=False)
                for t, i in zip(views[:n], index)]

    # Plain ops, not XLA: TensorFlow's AssignVariableOp copies a read into the target's own
    # buffer, where an XLA function returns new buffers (+0.4x the weights' bytes of peak
    # memory, measured: benchmarks/memory.py)
    return _branch(get, cache, None, copy, targets + unique)


def sync_levels_branch(reach, cache, weights, slow_levels, steps, syncs, momentum=(),
                       cached=(), pullback="none"):
    """The ``tf.cond`` branch of a sync (level 0 syncs), for any number of levels and pullback.

    Level ``i >= 1`` syncs too where the bool tensor ``syncs[i]`` says so (and every level below
    it did): each outcome is its own branch, chosen by a ``tf.cond`` per level, whose body knows
    which levels sync and writes what it changes (no new values passed out of a cond: every
    weight's temporaries would be alive at once). The weights go in pieces of at most
    ``_slots.PIECE_BYTES``, one after the other: a write makes a new buffer (XLA's outputs,
    TensorFlow's temporaries), and one piece's are alive at a time, not the whole model's (two
    levels in one piece: +1.1 - 1.7x the weights' bytes of peak memory, measured).
    ``momentum`` / ``cached``: per weight, the inner optimizer's momentum and its cached copy
    (``pullback``)."""
    levels = len(slow_levels)
    momentum, cached = list(momentum), list(cached)

    def group(i):
        """Weight i and its copies: slow per level, momentum, cached momentum."""
        found = [weights[i]]
        for per_weight in list(slow_levels) + [m for m in (momentum, cached) if m]:
            found.append(per_weight[i])
        return found

    chunks = []  # per chunk: (its variables, weight by weight; their views; its weights)
    for indices in _chunked(weights, len(group(0))):
        variables = []
        for i in indices:
            variables += group(i)
        chunks.append((variables, reach(variables), len(indices)))

    def body_of(top, n):
        """The body of a chunk of ``n`` weights when levels 0..top sync."""
        static = [True] * (top + 1) + [False] * (levels - top - 1)
        width = len(group(0))

        def body(views):
            # loops, not nested comprehensions: TF 2.0's AutoGraph, converting a user's
            # tf.function around the hooked update, loses names in those
            fast, slows, moms, caches = [], [[] for _ in range(levels)], [], []
            for j in range(n):
                row = views[j * width:(j + 1) * width]
                fast.append(row[0])
                for level in range(levels):
                    slows[level].append(row[1 + level])
                if pullback != "none":
                    moms.append(row[1 + levels])
                if pullback == "pullback":
                    caches.append(row[2 + levels])
            slow_values = []
            for level in range(levels):
                slow_values.append([s.read_value() for s in slows[level]])
            new_fast, new_levels = _rule.synced_values(
                [w.read_value() for w in fast], slow_values, steps, static, _static_cond)
            writes = [w.assign(v, read_value=False) for w, v in zip(fast, new_fast)]
            for level in range(top + 1):
                writes += [s.assign(v, read_value=False)
                           for s, v in zip(slows[level], new_levels[level])]
            if pullback != "none":
                new_momentum, new_cached = _rule.momentum_after_sync(
                    [m.read_value() for m in moms], [c.read_value() for c in caches],
                    steps[0], pullback, tf.zeros_like)
                writes += [m.assign(v, read_value=False) for m, v in zip(moms, new_momentum)]
                writes += [c.assign(v, read_value=False) for c, v in zip(caches, new_cached)]
            return writes

        return body

    def own(top):
        """Levels 0..top sync: the chunks' branches, each after the one before."""
        branches = [_branch(get, cache, ("sync", tuple(steps), pullback, top)
                            + tuple(id(v) for v in variables), body_of(top, n), variables)
                    for variables, get, n in chunks]

        def run():
            done = None
            for branch in branches:
                with tf.control_dependencies([done] if done is not None else []):
                    done = branch()
            return done

        return run

    def branch_for(top):
        if top + 1 == levels:
            return own(top)
        return lambda: tf.cond(syncs[top + 1], branch_for(top + 1), own(top))

    return branch_for(0)


def _static_cond(pred, true_fn, false_fn):
    """``cond`` for :func:`_rule.synced_values` where which levels sync is known when tracing."""
    return true_fn() if pred else false_fn()


def _chunked(weights, copies):
    """Indices of ``weights`` in consecutive groups whose weights, each with ``copies - 1``
    copies, hold at most ``_slots.PIECE_BYTES`` (or one weight)."""
    return pieces([copies * int(w.shape.num_elements() or 0) * w.dtype.base_dtype.size
                   for w in weights], _slots.PIECE_BYTES)


def _branch(get, cache, key, body, variables):
    """The branch running ``body`` on the views ``get()`` returns: XLA-compiled (as ``key`` in
    ``cache``) where TF can (:func:`_xla_available`) and no tf.distribute strategy is in use (a
    mirrored variable has a handle per replica), else, or if ``key`` is None, as plain ops.
    Returns True."""
    if key is not None and _xla_available() and not tf.distribute.has_strategy():
        fused = _fused(cache, key, body, variables)

        def compiled():
            return fused(*[v.handle for v in get()])

        return compiled

    def plain():
        with tf.control_dependencies(body(get())):
            return tf.constant(True)

    return plain


def _xla_available():
    """XLA-compiled functions inside the train step: TF >= 2.5 (``jit_compile``), in TF2's
    function-building mode or eagerly (not a TF1-style graph)."""
    return tuple(int(p) for p in tf.__version__.split(".")[:2]) >= (2, 5) and _functions()
