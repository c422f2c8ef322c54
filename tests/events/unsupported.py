"""The model's refusal: a construct whose Go behaviour the Argo Events model does not reproduce."""

from __future__ import annotations


class Unsupported(Exception):
    """Raised instead of guessing, so no test goes green on a construct the model does not know.

    Extend the model (with the upstream source named) rather than catching this.
    """
