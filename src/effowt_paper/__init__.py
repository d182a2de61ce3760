"""The paper's experiments, kept apart from the library as open_clip keeps
``open_clip_train`` beside ``open_clip``: the transfer-mode comparison (``accuracy``),
the design ablations (``ablation``), the proxy checks (``probe``, ``forgetting``), the
experiment runner they share (``experiment``) and their worlds (``bench_worlds``).

They stand on :mod:`effowt` (config, training, tracking, evaluation, the benchmark
writer :mod:`effowt.bench.output`); nothing in :mod:`effowt` imports them except the
``effowt bench`` table (:data:`effowt.commands.bench.BENCHMARKS`), which names them so
that ``effowt bench accuracy|ablation|probe|forgetting`` stay commands of the one CLI.
"""
