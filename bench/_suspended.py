"""Greenlets parked a given number of Python frames deep, for memory metrics."""


def suspender(greenlet, depth):
    """Return a function that creates one greenlet suspended ``depth`` frames deep.

    The greenlet recurses until ``depth`` frames of ``descend`` are live,
    then switches back to the caller and is never resumed, so those frames
    (and whatever stack the implementation keeps for them) stay allocated.
    """
    parent = greenlet.getcurrent()

    def descend(remaining):
        if remaining > 1:
            descend(remaining - 1)
        else:
            parent.switch()

    def spawn():
        g = greenlet.greenlet(descend)
        g.switch(depth)
        return g

    return spawn
