"""The proof engine: a verdict for every query of a weights file, each one proven, never guessed.

How a verdict is proven (docs/theorems/soundness.md, docs/theorems/certificate.md):
1. error_model.py bounds how far any conforming float64 evaluation can land from a computed value
   (Lemmas S0-S5); exactness.py proves whole stages exact where it can (Lemma S8).
2. A path computes margins and those radii: reference.py (§3 with a radius on every value),
   fast.py (one-layer single hop, Lemma S7), certify.py (a margin bound per query, Theorem C2'),
   torch_path.py (reference.py's rules on torch tensors).
3. verdict.py decides each safe query by Theorem S5; exact.py's oracle (balls.py, rationals.py:
   Theorem S6) decides the rest, and alone is the exact path; conforming.py draws evaluations to test it.
4. run.py picks the path per query kind and checks every kind a file declares (chunks.py: threads).
"""

from georecall.verify.run import (
    PATHS,
    verify_chain_of_thought,
    verify_model,
    verify_multi_hop,
    verify_queries,
    verify_single_hop,
)
from georecall.verify.verdict import RecallReport

__all__ = ["PATHS", "RecallReport", "verify_chain_of_thought", "verify_model", "verify_multi_hop", "verify_queries", "verify_single_hop"]
