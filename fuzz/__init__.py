"""Coverage-guided fuzzing of the framers, the DNS message codec and the zone parser.

``fuzz.targets`` holds the targets (plain functions of ``bytes``, runnable with
or without atheris), ``fuzz.run`` runs them under atheris for a bounded time,
``fuzz.seeds`` writes the seed corpus in ``fuzz/corpus/<target>/``.
"""
