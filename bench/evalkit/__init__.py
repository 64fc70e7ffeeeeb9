"""Evaluation-only code for the benches and the tests: not in the wheel, and no module of
the wheel imports it (tests/test_packaging.py checks).


- `pii_eval`, `pii_eval_values`: the PII scanner's labeled set, generated with Faker
  (the `test` and `bench` extras) from a seed (`bench/pii.py`, tests/compliance)
- `movielens`: MovieLens-100K as an `InteractionLog`, from the recbole wheel
  (`bench/recs.py`)
- `synthetic`: shops and interaction logs with planted taste (`bench/recs.py`'s speed
  log, tests/recs)

Import them as `bench.evalkit.<module>` with the repository root on the import path
(the benches put it there; pytest's `pythonpath = ["."]` does for the tests). The
product's own evaluation (splits, metrics, tuned baselines, the training gate) stays
in `recs.evaluation`.
"""
