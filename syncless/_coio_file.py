"""coio's buffered files: ``nbfile`` (a duplex, non-blocking file on one or
two fds whose blocking calls park only the calling tasklet), ``nblimitreader``
and the ``fdopen``/``pipe``/``popen`` constructors (spec §1.4).

Bytes only. The read buffer is a fixed bytearray with a live memoryview over
it: data is ``[_rpos, _rend)``, reads go straight into the free space after
it (``os.readv``), and lines leave through the view with one copy. It is only
replaced (to grow) or compacted in ``_make_room``, never resized, so views
handed out by ``get_read_buffer`` stay memory-safe (if stale).
"""
import os
import select
import subprocess
import sys

from ._syncless import coio_module as _coio
from ._coio_socket import _check_timeout
from ._coio_wait import wait_again_after_early_wakeups

_EV_READ = _coio.EV_READ
_EV_WRITE = _coio.EV_WRITE
_DEFAULT_BUFFER = 8192
_NL = b"\n"  # the one b"\n" object, so an identity test spares len(delim)


def _close_fd(fd):
    # Waiters elsewhere get OSError(EBADF) instead of a reused fd.
    _coio.cancel_waiters(fd)
    os.close(fd)


def _stripend(line, delim):
    """readline_stripend's result for a line readline() returned."""
    if not line:
        return None
    if delim is None:
        if line[-1] != 10:
            return line
        return line[:-2] if line[-2:-1] == b"\r" else line[:-1]
    return line[:-1] if line[-1:] == delim else line


class nbfile:
    """A buffered file on ``read_fd`` and ``write_fd`` (-1: no such
    direction; the same fd for a socket). Each direction waits on its own, so
    one tasklet may read while another writes.

    write_buffer_limit: 0 unbuffered, 1 line-buffered, 2 unlimited until
    flush(), >= 3 the buffer size (-1: 8192). The timeout (see settimeout)
    bounds each wait. Errors of read(2)/write(2) propagate unchanged. EOF is
    not remembered: every read at EOF asks the fd again. With ``do_close``,
    close() closes the fds, or, with ``close_ref``, returns
    ``close_ref.close()`` instead; nothing closes them on garbage collection.
    """

    __slots__ = ("_read_fd", "_write_fd", "_rbuf", "_rview", "_rpos", "_rend", "_rgen",
                 "_min_read", "_wbuf", "_wlimit", "_flush_at", "_timeout", "_do_close",
                 "_close_ref", "closed", "mode", "name")

    def __init__(self, read_fd, write_fd, write_buffer_limit=-1, min_read_buffer_size=-1,
                 do_set_fd_nonblocking=True, do_close=False, close_ref=None, mode="r+",
                 name=None, timeout=None):
        self._read_fd = read_fd
        self._write_fd = write_fd
        if do_set_fd_nonblocking:
            for fd in (read_fd, write_fd):
                if fd >= 0:
                    os.set_blocking(fd, False)
        self._min_read = min_read_buffer_size if min_read_buffer_size > 0 else _DEFAULT_BUFFER
        self._rbuf = bytearray(self._min_read)
        self._rview = memoryview(self._rbuf)
        self._rpos = self._rend = 0
        # Bumped whenever buffered bytes move or are pushed back, so a
        # readline that parked knows whether what it scanned is still there.
        self._rgen = 0
        self._wbuf = bytearray()
        self.write_buffer_limit = write_buffer_limit
        self._timeout = _check_timeout(timeout)
        self._do_close = do_close
        self._close_ref = close_ref
        self.closed = False
        self.mode = mode
        self.name = name

    # --- reading: the buffer -------------------------------------------------

    def _make_room(self, n):
        """At least n bytes of free space after the buffered data."""
        pos, end = self._rpos, self._rend
        if len(self._rbuf) - end >= n:
            return
        size = end - pos
        if size + n <= len(self._rbuf):
            self._rview[:size] = self._rview[pos:end]
        else:
            buf = bytearray(max(size + n, 2 * len(self._rbuf)))
            buf[:size] = self._rview[pos:end]
            self._rbuf = buf
            self._rview = memoryview(buf)
        self._rpos, self._rend = 0, size
        self._rgen += 1

    def _read_some(self, hint):
        """One read(2) of at least ``hint`` bytes' room into the buffer:
        returns how many came (0 at EOF), or None after waiting for the fd,
        as the buffer may have changed meanwhile."""
        self._make_room(max(hint, self._min_read))
        end = self._rend
        try:
            got = os.readv(self._read_fd, (self._rview[end:],))
        except BlockingIOError:
            if self._timeout == 0.0:
                raise
            if _coio.wait(self._read_fd, _EV_READ, self._timeout) is False:
                raise TimeoutError("timed out")
            return None
        self._rend = end + got
        return got

    def _take(self, n):
        pos = self._rpos
        self._rpos = pos + n
        return self._rview[pos:pos + n].tobytes()

    def _line_length(self, limit, delim):
        """Buffers the next line; returns its length: through the first
        delim, at most ``limit`` (if >= 0), or what is left at EOF."""
        searched = 0  # bytes after _rpos known to hold no delim
        while True:
            pos, avail = self._rpos, self._rend - self._rpos
            stop = avail if limit < 0 or avail < limit else limit
            i = self._rbuf.find(delim, pos + searched, pos + stop)
            if i >= 0:
                return i + 1 - pos
            if stop == limit:
                return limit
            searched = stop
            gen = self._rgen
            got = self._read_some(avail)
            if got == 0:
                return avail
            if got is None and (self._rgen != gen or self._rpos != pos):
                searched = 0

    # --- reading: the API ----------------------------------------------------

    def read(self, n=-1):
        """n bytes, fewer only at EOF; n < 0 reads to EOF."""
        if n < 0:
            while self._read_some(self._rend - self._rpos) != 0:
                pass
            n = self._rend - self._rpos
        else:
            while True:
                avail = self._rend - self._rpos
                if avail >= n:
                    break
                if self._read_some(n - avail) == 0:
                    n = avail
                    break
        return self._take(n)

    def read_at_most(self, n):
        """Up to n buffered bytes without a system call, else what one read
        brings (b'' at EOF)."""
        if n < 0:
            raise ValueError("n must be non-negative")
        while self._rend == self._rpos and n:
            if self._read_some(n) == 0:
                break
        return self._take(min(n, self._rend - self._rpos))

    def readline(self, limit=-1, delim=_NL):
        """The next line through ``delim`` (one byte), at most ``limit``
        bytes; the partial line at EOF; b'' at EOF."""
        pos, end = self._take_line(limit, delim)
        return self._rview[pos:end].tobytes()

    def _take_line(self, limit, delim):
        """Consumes the next line (through delim, at most limit bytes, or
        what is left at EOF); its (start, end) in the read buffer."""
        if delim is not _NL and len(delim) != 1:
            raise TypeError("delim must be a single byte")
        pos = self._rpos
        end = self._rbuf.find(delim, pos, self._rend) + 1
        if end <= pos or 0 <= limit < end - pos:
            n = self._line_length(limit, delim)  # may move the data
            pos = self._rpos
            end = pos + n
        self._rpos = end
        return pos, end

    def readline_stripend(self, limit=-1, delim=None):
        """readline() without its delim (delim None: without b'\\n' or
        b'\\r\\n'); None at EOF; a partial or limit-cut line comes whole."""
        d = _NL if delim is None else delim
        pos, end = self._take_line(limit, d)
        if end == pos:
            return None
        buf = self._rbuf
        if buf[end - 1] == d[0]:
            end -= 1
            if delim is None and end > pos and buf[end - 1] == 13:
                end -= 1
        return self._rview[pos:end].tobytes()

    def readlines(self, hint=-1):
        lines = []
        size = 0
        for line in self:
            lines.append(line)
            size += len(line)
            if 0 < hint <= size:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def read_upto(self, n):
        """Reads until at least n bytes are buffered (or EOF); returns how
        many are."""
        while self._rend - self._rpos < n:
            if self._read_some(n - (self._rend - self._rpos)) == 0:
                break
        return self._rend - self._rpos

    def read_more(self, n):
        """Reads at least n more bytes into the buffer (fewer at EOF);
        returns how many came."""
        added = 0
        while added < n:
            got = self._read_some(n - added)
            if got == 0:
                break
            if got is not None:
                added += got
        return added

    def discard(self, n):
        """Drops n bytes, reading as needed; returns how many EOF spared."""
        while True:
            avail = self._rend - self._rpos
            if n <= avail:
                self._rpos += n
                return 0
            self._rpos = self._rend
            n -= avail
            # Skipped bytes need not fit in the buffer all at once.
            if self._read_some(min(n, 1 << 16)) == 0:
                return n

    def unread(self, data):
        """Pushes data back in front of the buffered bytes."""
        n = len(data)
        if n > self._rpos:
            # Room for n more, then slide the data up to make it in front.
            self._make_room(n)
            pos, end = self._rpos, self._rend
            self._rview[n:end - pos + n] = self._rview[pos:end]
            self._rpos, self._rend = n, end - pos + n
        pos = self._rpos
        self._rview[pos - n:pos] = data
        self._rpos = pos - n
        self._rgen += 1

    def unread_append(self, data):
        """Appends data after the buffered bytes."""
        n = len(data)
        self._make_room(n)
        self._rview[self._rend:self._rend + n] = data
        self._rend += n

    def _span(self, start, end):
        """Buffer indexes for slice [start:end] of the buffered bytes."""
        pos = self._rpos
        size = self._rend - pos
        if start < 0:
            start = max(start + size, 0)
        if end is None or end > size:
            end = size
        elif end < 0:
            end = max(end + size, 0)
        return pos + start, pos + end

    def find(self, sub, start=0, end=None):
        """bytes.find over the buffered bytes (no reading)."""
        first, last = self._span(start, end)
        i = self._rbuf.find(sub, first, last)
        return i - self._rpos if i >= 0 else -1

    def rfind(self, sub, start=0, end=None):
        first, last = self._span(start, end)
        i = self._rbuf.rfind(sub, first, last)
        return i - self._rpos if i >= 0 else -1

    def get_string(self, start=0, end=None):
        """A copy of the buffered bytes [start:end]."""
        first, last = self._span(start, end)
        return self._rview[first:last].tobytes()

    def get_read_buffer(self, start=0, end=None):
        """A writable memoryview of the buffered bytes [start:end]; stale
        after the next read, unread or discard."""
        first, last = self._span(start, end)
        return self._rview[first:last]

    @property
    def read_buffer_len(self):
        return self._rend - self._rpos

    def wait_for_readable(self, timeout=None):
        """True once something is buffered or the fd is readable (EOF
        included), False after ``timeout`` seconds; reads nothing."""
        if self._rend > self._rpos:
            return True
        if timeout == 0:
            # Only a poll: no registration, no round trip through the hub.
            poller = select.poll()
            poller.register(self._read_fd, select.POLLIN)
            return bool(poller.poll(0))
        fd = self._read_fd
        return wait_again_after_early_wakeups(lambda t: _coio.wait(fd, _EV_READ, t), timeout)

    # --- writing -------------------------------------------------------------

    def write(self, data):
        """Buffers data as write_buffer_limit says; what must go out goes
        out completely (or raises)."""
        wbuf = self._wbuf
        start = len(wbuf)
        wbuf += data
        n = len(wbuf) - start
        if len(wbuf) >= self._flush_at or (self._wlimit == 1 and wbuf.find(b"\n", start) >= 0):
            self.flush()
        return n

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        """Writes out the whole write buffer. On an error the unwritten rest
        stays buffered."""
        wbuf = self._wbuf
        while wbuf:
            try:
                n = os.write(self._write_fd, wbuf)
            except BlockingIOError:
                if self._timeout == 0.0:
                    raise
                if _coio.wait(self._write_fd, _EV_WRITE, self._timeout) is False:
                    raise TimeoutError("timed out")
                continue
            # Cheap: CPython drops a bytearray's head by moving its start.
            del wbuf[:n]

    def discard_write_buffer(self):
        self._wbuf.clear()

    @property
    def write_buffer_len(self):
        return len(self._wbuf)

    @property
    def write_buffer_limit(self):
        """0 unbuffered, 1 line-buffered, 2 until flush(), >= 3 the size;
        setting it does not flush."""
        return self._wlimit

    @write_buffer_limit.setter
    def write_buffer_limit(self, limit):
        if limit < 0:
            limit = _DEFAULT_BUFFER
        self._wlimit = limit
        self._flush_at = limit if limit == 0 or limit >= 3 else sys.maxsize

    # --- timeout, fds, closing ---------------------------------------------

    def settimeout(self, timeout):
        """None waits forever; 0 raises BlockingIOError instead of waiting;
        > 0 bounds each wait (TimeoutError('timed out')), restarting after
        every partial progress."""
        self._timeout = _check_timeout(timeout)

    def gettimeout(self):
        return self._timeout

    @property
    def timeout(self):
        return self._timeout

    def fileno(self):
        return self._read_fd if self._read_fd >= 0 else self._write_fd

    def write_fileno(self):
        return self._write_fd

    def isatty(self):
        return os.isatty(self.fileno())

    def forget_write_fd(self):
        """Flushes, then detaches and returns the write fd (closing it sends
        EOF; close() will not)."""
        self.flush()
        fd, self._write_fd = self._write_fd, -1
        return fd

    def close(self):
        """Flushes and frees the buffers; with do_close closes the fds, or
        returns close_ref.close()."""
        if self.closed:
            return None
        self.closed = True
        result = None
        try:
            self.flush()
        finally:
            fds = {self._read_fd, self._write_fd} - {-1}
            self._read_fd = self._write_fd = -1
            self._rbuf = bytearray()
            self._rview = memoryview(self._rbuf)
            self._rpos = self._rend = 0
            self._wbuf = bytearray()
            if self._do_close:
                if self._close_ref is not None:
                    result = self._close_ref.close()
                else:
                    for fd in fds:
                        _close_fd(fd)
        return result

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class nblimitreader:
    """A read-only view of the next ``limit`` bytes of an nbfile (such as a
    request body); len() is how many are left."""

    __slots__ = ("_file", "_left")

    def __init__(self, f, limit):
        self._file = f
        self._left = max(limit, 0)

    def __len__(self):
        return self._left

    def read(self, size=-1):
        if size < 0 or size > self._left:
            size = self._left
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def readline(self, limit=-1, delim=_NL):
        if limit < 0 or limit > self._left:
            limit = self._left
        line = self._file.readline(limit, delim)
        self._left -= len(line)
        return line

    def readline_stripend(self, limit=-1, delim=None):
        return _stripend(self.readline(limit, _NL if delim is None else delim), delim)

    # nbfile's, which only call readline() and iterate.
    readlines = nbfile.readlines
    __iter__ = nbfile.__iter__
    __next__ = nbfile.__next__

    def discard_to_read_limit(self):
        """Skips the rest; returns how many bytes EOF spared."""
        left, self._left = self._left, 0
        return self._file.discard(left)


def fdopen(fd, mode="r", buffering=-1, write_buffer_limit=-1, do_close=True, name=None):
    """os.fdopen for binary files: 'r' reads, 'w' (or 'a') writes, '+'
    both; 'b' is implied. ``buffering`` sets write_buffer_limit unless that
    is given; writing to a tty is line-buffered by default."""
    kind = mode.replace("b", "")
    if kind not in ("r", "w", "a", "r+", "w+", "a+"):
        raise ValueError("invalid mode: %r" % mode)
    reads = kind[0] == "r" or "+" in kind
    writes = kind[0] != "r" or "+" in kind
    if write_buffer_limit < 0:
        write_buffer_limit = buffering
    if write_buffer_limit < 0 and writes and os.isatty(fd):
        write_buffer_limit = 1
    return nbfile(fd if reads else -1, fd if writes else -1, write_buffer_limit,
                  do_close=do_close, mode=mode, name=fd if name is None else name)


def pipe():
    """(reader, writer): nbfiles on the two ends of a new os.pipe()."""
    r, w = os.pipe()
    return (nbfile(r, -1, do_close=True, mode="rb", name=r),
            nbfile(-1, w, do_close=True, mode="wb", name=w))


class _Process:
    """popen's close_ref: closes the pipe, then waits for the shell (parking
    only the tasklet) and answers as os.popen's close() does."""

    __slots__ = ("_proc", "_fd")

    def __init__(self, proc, fd):
        self._proc = proc
        self._fd = fd

    def close(self):
        _close_fd(self._fd)
        proc = self._proc
        if proc.poll() is None:
            try:
                pidfd = os.pidfd_open(proc.pid)
            except OSError:
                proc.wait()  # no pidfd (old kernel): block the thread
            else:
                try:
                    while proc.poll() is None:
                        _coio.wait(pidfd, _EV_READ)
                finally:
                    os.close(pidfd)
        status = proc.returncode
        return None if status == 0 else status << 8


def popen(cmd, mode="r"):
    """os.popen for bytes: an nbfile on the shell's stdout ('r') or stdin
    ('w'); its close() returns the exit status (None for 0)."""
    kind = mode.replace("b", "")
    if kind not in ("r", "w"):
        raise ValueError("invalid mode: %r" % mode)
    r, w = os.pipe()
    mine, theirs = (r, w) if kind == "r" else (w, r)
    try:
        proc = subprocess.Popen(cmd, shell=True, stdin=theirs if kind == "w" else None,
                                stdout=theirs if kind == "r" else None)
    except BaseException:
        os.close(mine)
        raise
    finally:
        os.close(theirs)
    return nbfile(mine if kind == "r" else -1, mine if kind == "w" else -1, do_close=True,
                  close_ref=_Process(proc, mine), mode=mode, name=cmd)
