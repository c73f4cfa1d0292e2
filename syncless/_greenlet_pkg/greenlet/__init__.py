"""greenlet, implemented by Syncless on its coroutine core.

Loaded instead of the greenlet distribution after
``syncless.install_greenlet()`` (or with ``syncless.greenlet_path()`` first on
``sys.path``).
"""
__all__ = [
    "__version__",
    "_C_API",
    "GreenletExit",
    "error",
    "getcurrent",
    "greenlet",
    "gettrace",
    "settrace",
]

# The greenlet release whose API and C ABI this implements.
__version__ = "3.5.6"

from ._greenlet import _C_API  # noqa: E402
from ._greenlet import GreenletExit
from ._greenlet import error
from ._greenlet import getcurrent
from ._greenlet import greenlet
from ._greenlet import gettrace
from ._greenlet import settrace
from ._greenlet import GREENLET_USE_CONTEXT_VARS  # noqa: F401
from ._greenlet import GREENLET_USE_GC  # noqa: F401
from ._greenlet import GREENLET_USE_TRACING  # noqa: F401
from ._greenlet import CLOCKS_PER_SEC  # noqa: F401
from ._greenlet import enable_optional_cleanup  # noqa: F401
from ._greenlet import get_clocks_used_doing_optional_cleanup  # noqa: F401
