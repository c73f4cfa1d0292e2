"""Stackless's C module ``_stackless``, served by Syncless's core.

Importing this module replaces it in ``sys.modules`` with the extension's
module object, so ``_stackless.tasklet is stackless.tasklet``.
"""
import sys

from syncless._syncless import stackless_module as _module

sys.modules[__name__] = _module
