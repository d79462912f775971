"""Loads the reference engine (examples/engines/collections.py) for the broken engines here.

Each broken engine overrides exactly one behaviour of it, so the gate must fail it with
the invariant that behaviour breaks.
"""

import importlib.util
import os
import sys

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                     "examples", "engines", "collections.py")
_spec = importlib.util.spec_from_file_location("syncgate_reference_engine", _PATH)
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)
Engine = reference.Engine


def run(engine_class):
    sys.exit(engine_class().main())
