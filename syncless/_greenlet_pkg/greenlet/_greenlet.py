# greenlet._greenlet is built into syncless._syncless, so that greenlets and
# every other face share one core; this module stands in for it by name.
import sys

from syncless import _syncless

sys.modules[__name__] = _syncless.greenlet_module
