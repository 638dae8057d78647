"""Lookahead's state and in-graph sync, for every Keras that runs on TensorFlow.

The state is an int64 step counter and one slow copy per trainable weight, all plain
``tf.Variable``s that no Keras object tracks (they are not model weights and never trainable).
Before each inner update, a ``tf.cond`` on ``counter == 0`` copies the weights into the slow
ones (the anchor: the weights as they are when the first update is applied); after it, the
counter is incremented in the graph, and a ``tf.cond`` runs the sync only when the counter ends
a period. Other steps evaluate two predicates and do no other work, and nothing goes back to the
host. The version-specific part, which optimizer method to wrap, is in the adapters.

Inside a TF2 function, every variable a step uses is one more argument of every call of the
function, whether the branch that uses it runs or not: with hundreds of weights that costs more
than the step's own work (a few microseconds per variable and call, measured). So the branches
reach the variables through one tensor of their resource handles, packed once, eagerly
(:class:`Reach`), and order themselves after the inner update by explicit control dependencies
(:func:`run_ordered`), since TensorFlow's automatic ones no longer see which variables they touch.
"""
import tensorflow as tf

from keras_lookahead import _rule
from keras_lookahead.compat import _momentum, _slots
from keras_lookahead.compat._slots import SlotTable, pieces


class TFState(SlotTable):
    """Counter and slow weights of one injected model or one ``LookaheadOptimizer``.

    Args:
        levels: ``((period, step_size), ...)``: ``((k, alpha),)`` for Lookahead, one more level
            for nested Lookahead (already validated).
        weights: the trainable weights at attach time. Their slow copies start at zero and
            are anchored in the graph at the first update (:meth:`anchor_before`): nothing
            reads the weights when the variables are made (a TF1-style graph initialises
            them all at once, loaded weights possibly after).
        store: what makes the variables: an object with ``counter(like)`` and
            ``slows(weights, levels, copy)`` (one list of copies per weight; ``copy``: from
            the weights' values, else zeros). Default: plain variables no Keras object tracks
            (:class:`OwnVariables`).
    """

    def __init__(self, levels, weights, store, pullback="none"):
        self.levels = tuple(levels)
        self.pullback = pullback
        # pullback: weight -> the inner optimizer's momentum of it (momentum_lookup), set by
        # whoever knows the optimizer; read when the sync is built, after the inner update
        self.momentum_of = None
        self._store = store
        self._compiled = {}
        self._reach = Reach()
        self._cached = {}  # pullback="pullback": id(weight) -> its cached momentum
        SlotTable.__init__(self)
        self.counter = store.counter(weights[0])
        self._add(weights, copy=False)

    def prepare(self, weights):
        """Give every weight in ``weights`` that has none a slow copy, taken from its current
        value (a weight that became trainable after training started)."""
        self._add(weights, copy=True)

    def _add(self, weights, copy):
        missing = []
        for w in weights:
            if id(w) not in self._slots and all(m is not w for m in missing):
                missing.append(w)
        if missing:
            for w, slows in zip(missing, self._store.slows(missing, len(self.levels), copy)):
                self._slots[id(w)] = (w, list(slows))
            if self.pullback == "pullback":
                for w, cached in zip(missing, self._store.cached(missing)):
                    self._cached[id(w)] = cached

    def copies(self, weight):
        return SlotTable.copies(self, weight) + (
            [self._cached[id(weight)]] if self.pullback == "pullback" else [])

    def anchor_before(self, weights):
        """While no update has been counted (counter 0), copy ``weights`` into every slow
        level: called before the inner update, so that the slow weights start from the weights
        as that first update finds them (weights loaded or set after attaching are the anchor).
        A restored state (counter > 0) is left alone. Returns a bool tensor: anchored or not;
        the inner update must run after it (a control dependency in a TF1-style graph)."""
        return _once_per_step(lambda: self._anchor(weights))

    def _anchor(self, weights):
        pairs = self.anchor_pairs(weights)
        return tf.cond(tf.equal(self.counter, 0),
                       copy_branch(self._reach, self._compiled, [s for s, _ in pairs],
                                   [w for _, w in pairs]),
                       lambda: tf.constant(False))

    def sync_after(self, deps, weights):
        """Count one applied update once ``deps`` have run; on the last step of a period move
        the slow weights and reset ``weights`` to them. Returns a bool tensor: synced or not.

        Under a tf.distribute strategy this runs once per step, not once per replica: in the
        cross-replica context (``merge_call``), where assigning a mirrored variable writes
        every replica's copy (the way optimizers apply their updates)."""
        return _once_per_step(lambda: self._sync_after(deps, weights))

    def _sync_after(self, deps, weights):
        slow_levels = [self.slow_weights(weights, level) for level in range(len(self.levels))]
        with tf.control_dependencies([d for d in deps if d is not None]):
            count = self.counter.assign_add(1)
        syncs = [_rule.is_sync_step(count, period, equal=tf.equal) for period, _ in self.levels]

        momentum = cached = []
        if self.pullback != "none":
            momentum = [self.momentum_of(w) for w in weights]
            if self.pullback == "pullback":
                cached = [self._cached[id(w)] for w in weights]

        branch = sync_levels_branch(self._reach, self._compiled, weights, slow_levels,
                                    [step for _, step in self.levels], syncs, momentum, cached,
                                    self.pullback)
        return tf.cond(syncs[0], branch, lambda: tf.constant(False))


class OwnVariables:
    """Lookahead's variables as plain ``tf.Variable``s that belong to no Keras object
    (``inject``): not model weights, not optimizer weights. In a TF1-style graph they are
    initialised at once with ``run_initializers(ops)`` (the model's session).

    ``checkpointable`` holds them all (``counter``; ``slow`` and ``cached``, in creation order),
    for the adapter to make a checkpoint dependency of the model: TensorFlow's object-based
    checkpoints (``save_weights`` in the TF format, ``tf.train.Checkpoint``,
    ``BackupAndRestore``) then save and restore them with the model."""

    def __init__(self, run_initializers, strategy=None):
        self._run_initializers = run_initializers
        # the model's tf.distribute strategy: variables made in its scope are mirrored on each
        # replica's device, like the weights they copy
        self._strategy = strategy
        self.checkpointable = tf.Module(name="keras_lookahead")
        self.checkpointable.slow = []
        self.checkpointable.cached = []

    def _create(self, makers, like):
        """Create variables in the graph of ``like`` and initialise them now."""
        if tf.executing_eagerly():
            if self._strategy is None or tf.distribute.has_strategy():
                return [make() for make in makers]
            with self._strategy.scope():
                return [make() for make in makers]
        with like.graph.as_default():
            created = [make() for make in makers]
        self._run_initializers([v.initializer for v in created])
        for v in created:
            v._keras_initialized = True  # standalone Keras would otherwise re-check them
        return created

    def counter(self, like):
        counter = self._create([lambda: tf.Variable(
            0, dtype=tf.int64, trainable=False, name="lookahead/counter")], like)[0]
        self.checkpointable.counter = counter
        return counter

    def slows(self, weights, levels, copy):
        def maker(w, level):
            return lambda: tf.Variable(_initial_slow(w, copy), trainable=False,
                                       name="lookahead/slow{}/{}".format(
                                           level or "", w.name.split(":")[0]))

        made = self._create([maker(w, level) for w in weights for level in range(levels)],
                            weights[0])
        self.checkpointable.slow.extend(made)
        return [made[i * levels:(i + 1) * levels] for i in range(len(weights))]

    def cached(self, weights):
        made = self._create([lambda w=w: tf.Variable(
            tf.zeros_like(w.read_value()), trainable=False,
            name="lookahead/cached_momentum/" + w.name.split(":")[0]) for w in weights],
            weights[0])
        self.checkpointable.cached.extend(made)
        return made


def _once_per_step(build):
    """``build()``, once per step: under a tf.distribute strategy, in the cross-replica context
    (``merge_call``), where assigning a mirrored variable writes every replica's copy, as
    optimizers apply their updates; elsewhere directly."""
    if tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context():
        return tf.distribute.get_replica_context().merge_call(lambda _: build())
    return build()


def _initial_slow(weight, copy):
    """A slow copy's initial value: the weight's (``copy``) or zeros of its shape and dtype."""
    if copy:
        return weight.read_value()
    return tf.zeros(weight.shape, dtype=weight.dtype.base_dtype)


def momentum_lookup(optimizer, pullback):
    """``weight -> its momentum variable`` in ``optimizer`` (looked up when called, so after the
    optimizer made its slots); ValueError now if it keeps no momentum-like state this code can
    reach (``_momentum.MOMENTUM``)."""
    new = hasattr(optimizer, "add_variable_from_reference")  # the 2.11+ optimizers
    row = _momentum.entry(optimizer)
    if row is None:
        raise _momentum.no_momentum(optimizer, pullback, "tf_attribute" if new else "slot")
    if row.tf_attribute is not None and new:
        attribute = row.tf_attribute
        return lambda w: getattr(optimizer, attribute)[
            optimizer._index_dict[optimizer._var_key(w)]]
    if row.slot is not None and callable(getattr(optimizer, "get_slot", None)):
        slot = row.slot
        return lambda w: optimizer.get_slot(w, slot)
    raise ValueError(
        "`pullback={!r}` needs the inner optimizer's momentum, which {} ({}) builds out of "
        "reach inside get_updates. Use pullback=\"none\" here, or a tf.keras optimizer. "
        "Received: pullback={!r}".format(pullback, type(optimizer).__name__,
                                         type(optimizer).__module__, pullback))


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


def apply_gradients_hook(original, state):
    """Wrap an ``apply_gradients(grads_and_vars, ...)`` (Keras OptimizerV2 or ``tf.train``)."""

    def apply_gradients(grads_and_vars, *args, **kwargs):
        grads_and_vars = list(grads_and_vars)
        weights = [v for _, v in grads_and_vars]
        state.check_applied(weights)
        applied, updates = run_ordered(lambda: original(grads_and_vars, *args, **kwargs),
                                       state.anchor_before(weights))
        synced = state.sync_after([applied] + updates, weights)
        if tf.executing_eagerly():
            return applied
        return tf.group(*[t for t in (applied, synced) if t is not None])

    return apply_gradients


def get_updates_hook(original, state, restore=None):
    """Wrap a Keras 2 ``get_updates(loss, params)`` that returns a list of update ops.

    ``restore()``, if given, is called once, after the first rebuild: Keras 2 optimizers make
    their state (momentum, Adam's moments) anew in every ``get_updates``, and the adapter puts
    back the values the optimizer had when it was hooked."""
    pending = [restore]

    def get_updates(loss, params):
        state.check_applied(params)
        updates, _ = run_ordered(
            lambda: [tf.compat.v1.assign(*u) if isinstance(u, tuple) else u
                     for u in original(loss=loss, params=params)],
            state.anchor_before(params))
        if pending[0] is not None:
            pending.pop()()
            pending.append(None)
        return updates + [state.sync_after(updates, params)]

    return get_updates
