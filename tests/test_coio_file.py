"""coio's buffered files (spec §1.4, §5 nbfile_test.py, §9 "EOF and error
mapping"/"Buffering"): nbfile over a pipe and over a socketpair, the buffer
API, timeouts, nblimitreader, fdopen, pipe and popen. Every wait is gone
after every test."""
import errno
import os
import time
from types import SimpleNamespace

import pytest

import syncless
from syncless import _coio_file as coio_file
from syncless import coio
from syncless._syncless import coio_module as _coio

stackless = syncless.install_stackless()

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def nothing_left_waiting():
    yield
    assert _coio.waiting() == 0
    stackless.run()  # lets the hub leave the ring once it sees nothing waits
    assert stackless.getruncount() == 1


def spawn(function, *args):
    return stackless.tasklet(function)(*args)


@pytest.fixture(params=["pipe", "socketpair"])
def f(request):
    """An unbuffered nbfile whose writes come back to its reads."""
    if request.param == "pipe":
        read_fd, write_fd = os.pipe()
    else:
        a, b = coio.socketpair()
        read_fd, write_fd = a.detach(), b.detach()
    f = coio.nbfile(read_fd, write_fd, write_buffer_limit=0, do_close=True)
    yield f
    f.close()


def send_eof(f):
    os.close(f.forget_write_fd())


# --- readline -----------------------------------------------------------


def test_readline_limits(f):
    f.write(b"foo\nbarbaz\nend")
    assert f.readline(0) == b""
    assert f.readline(2) == b"fo"
    assert f.readline(2) == b"o\n"
    assert f.readline(4) == b"barb"
    assert f.readline(100) == b"az\n"
    send_eof(f)
    assert f.readline(0) == b""
    assert f.readline() == b"end"
    assert f.readline() == b""
    assert f.readline(5) == b""


def test_readline_waits_for_a_writer_tasklet(f):
    trace = []

    def writer():
        for piece in (b"hel", b"lo", b" world\nnext"):
            trace.append("w")
            f.write(piece)
            coio.sleep(0.01)

    spawn(writer)
    line = f.readline()
    trace.append("r")
    assert line == b"hello world\n"
    assert trace == ["w", "w", "w", "r"]
    assert f.read_buffer_len == 4
    stackless.run()


def test_a_1mb_line_takes_many_eagain_round_trips(f, monkeypatch):
    waits = []

    def counting_wait(fd, events, timeout):
        waits.append(events)
        return _coio.wait(fd, events, timeout)

    monkeypatch.setattr(coio_file, "_coio", SimpleNamespace(
        wait=counting_wait, cancel_waiters=_coio.cancel_waiters))
    line = bytes(range(256)).replace(b"\n", b"") * 4200 + b"\n"
    assert len(line) > 1 << 20
    spawn(f.write, line + b"tail")
    assert f.readline() == line
    assert f.read(4) == b"tail"
    stackless.run()
    assert waits.count(_coio.EV_READ) >= 4 and waits.count(_coio.EV_WRITE) >= 4


def test_partial_line_at_eof(f):
    f.write(b"one\ntwo")
    send_eof(f)
    assert f.readline() == b"one\n"
    assert f.readline() == b"two"
    assert f.readline() == b""


def test_eof_is_not_remembered(tmp_path):
    path = tmp_path / "growing"
    path.write_bytes(b"a")
    with coio.nbfile(os.open(path, os.O_RDONLY), -1, do_close=True) as f:
        assert f.read(5) == b"a"
        assert f.read() == b""
        with open(path, "ab") as out:
            out.write(b"b\n")
        assert f.readline() == b"b\n"


def test_two_readers_both_served(f):
    got = []
    readers = [spawn(lambda: got.append(f.readline())) for _ in range(2)]
    stackless.schedule()
    assert all(t.alive for t in readers) and not got
    f.write(b"first\nsecond\n")
    stackless.run()
    assert sorted(got) == [b"first\n", b"second\n"]


def test_a_parked_readline_rescans_bytes_pushed_back_meanwhile(f):
    f.write(b"abc")
    got = []
    spawn(lambda: got.append(f.readline()))
    stackless.schedule()  # it has scanned b"abc" and waits for more
    f.unread(b"x\n")
    f.write(b"def\n")
    stackless.run()
    assert got == [b"x\n"]
    assert f.readline() == b"abcdef\n"


def test_iteration_and_readlines(f):
    f.write(b"a\nb\nc\nd\ne")
    assert next(iter(f)) == b"a\n"
    assert f.readlines(3) == [b"b\n", b"c\n"]
    send_eof(f)
    assert list(f) == [b"d\n", b"e"]


def test_readline_delimiters(f):
    for bad in (b"", b"ab", b"\r\n"):
        with pytest.raises(TypeError):
            f.readline(delim=bad)
    with pytest.raises(TypeError):
        f.readline(delim="x")
    f.write(b"foo\xffbar\xffbr\xffend")
    assert f.readline(delim=b"\xff") == b"foo\xff"
    assert f.readline(delim=b"a") == b"ba"
    assert f.readline(delim=b"\xff") == b"r\xff"
    assert f.readline(2, b"\xff") == b"br"
    assert f.readline(2, b"\xff") == b"\xff"
    send_eof(f)
    assert f.readline(delim=b"\xff") == b"end"


def test_readline_stripend(f):
    f.write(b"unix\ndos\r\nmac\rx\xffy\xffpart\r\n" b"cut\r\n" b"last\r")
    assert f.readline_stripend() == b"unix"
    assert f.readline_stripend() == b"dos"
    assert f.readline_stripend() == b"mac\rx\xffy\xffpart"
    assert f.readline_stripend(4) == b"cut\r"
    assert f.readline_stripend() == b""
    send_eof(f)
    assert f.readline_stripend() == b"last\r"
    assert f.readline_stripend() is None


def test_readline_stripend_with_delim(f):
    f.write(b"a\r\xffb\xffc")
    send_eof(f)
    assert f.readline_stripend(delim=b"\xff") == b"a\r"
    assert f.readline_stripend(1, b"\xff") == b"b"
    assert f.readline_stripend(delim=b"\xff") == b""
    assert f.readline_stripend(delim=b"\xff") == b"c"
    assert f.readline_stripend(delim=b"\xff") is None


# --- the read buffer ------------------------------------------------------


def test_unread_get_string_and_writable_read_buffer(f):
    f.write(b"world")
    assert f.read_upto(5) == 5
    f.unread(b"hello ")
    f.unread_append(b"!")
    assert f.read_buffer_len == 12
    assert f.get_string() == b"hello world!"
    assert f.get_string(-6, -1) == b"world"
    assert f.get_string(20) == b""
    view = f.get_read_buffer(0, 5)
    assert view.tobytes() == b"hello" and not view.readonly
    view[0:1] = b"J"
    assert f.read(6) == b"Jello "
    f.unread(b"big " * 5000)  # more than fits in front: the buffer grows
    assert view.tobytes()  # stale, but a live view never blocks the buffer
    assert f.read(20006) == b"big " * 5000 + b"world!"
    assert f.read_buffer_len == 0


def test_find_and_rfind_slice_like_bytes(f):
    data = b"abcabcXab"
    f.write(b"junk" + data)
    f.discard(4)  # the buffered bytes start mid-buffer
    assert f.read_upto(len(data)) == len(data)
    indexes = [None] + list(range(-12, 13))
    for sub in (b"ab", b"c", b"", b"zz", b"X"):
        for start in indexes[1:]:
            for end in indexes:
                assert f.find(sub, start, end) == data.find(sub, start, end), (sub, start, end)
                assert f.rfind(sub, start, end) == data.rfind(sub, start, end), (sub, start, end)
                assert f.get_string(start, end) == data[start:end]
                assert f.get_read_buffer(start, end).tobytes() == data[start:end]
    assert f.find(b"ab") == 0 and f.rfind(b"ab") == 7


def test_read_exact_and_to_eof_of_200k_from_another_tasklet(f):
    data = os.urandom(200 * 1024)

    def writer():
        for i in range(0, len(data), 7000):
            f.write(data[i:i + 7000])
        send_eof(f)

    spawn(writer)
    assert f.read(10) == data[:10]
    assert f.read() == data[10:]
    assert f.read() == b""
    assert f.read(5) == b""
    stackless.run()


def test_read_at_most(f):
    with pytest.raises(ValueError):
        f.read_at_most(-1)
    assert f.read_at_most(0) == b""
    spawn(f.write, b"abcdef")
    assert f.read_at_most(4) == b"abcd"
    assert f.read_at_most(100) == b"ef"  # from the buffer, no system call
    send_eof(f)
    assert f.read_at_most(10) == b""


def test_read_upto_and_read_more(f):
    f.write(b"x" * 10)
    assert f.read_upto(3) == 10  # one read brings what is there
    assert f.read_upto(5) == 10  # enough is buffered already
    spawn(f.write, b"y" * 20)
    assert f.read_more(15) == 20
    assert f.read_buffer_len == 30
    f.write(b"z" * 5)
    send_eof(f)
    assert f.read_more(10) == 5  # EOF cuts it short
    assert f.read_upto(100) == 35
    assert f.read() == b"x" * 10 + b"y" * 20 + b"z" * 5


def test_discard(f):
    f.write(b"0123456789")
    assert f.read_upto(4) == 10
    assert f.discard(3) == 0
    assert f.read(2) == b"34"
    spawn(f.write, b"abc")
    assert f.discard(7) == 0
    assert f.read(1) == b"c"
    f.write(b"d")
    send_eof(f)
    assert f.discard(5) == 4


def test_wait_for_readable(f):
    assert f.wait_for_readable(0) is False
    assert f.wait_for_readable(0.01) is False
    spawn(f.write, b"x")
    assert f.wait_for_readable() is True
    assert f.read_buffer_len == 0
    assert f.wait_for_readable(0) is True
    assert f.read(1) == b"x"
    f.unread(b"y")
    assert f.wait_for_readable(0) is True
    stackless.run()


# --- writing -------------------------------------------------------------


def test_write_buffer_limits():
    r, w = os.pipe()
    with coio.nbfile(r, w, do_close=True) as f:
        assert f.write_buffer_limit == 8192
        assert f.write(b"abc") == 3
        assert f.write_buffer_len == 3 and f.read_at_most(0) == b""
        f.flush()
        assert f.write_buffer_len == 0 and f.read(3) == b"abc"
        f.write(b"x" * 8191)
        assert f.write_buffer_len == 8191
        f.write(b"x")
        assert f.write_buffer_len == 0  # reached the limit: written
        assert f.read(8192) == b"x" * 8192

        f.write_buffer_limit = 1
        f.write(b"no newline")
        assert f.write_buffer_len == 10
        f.write(b" and then\nmore")
        assert f.write_buffer_len == 0
        assert f.readline() == b"no newline and then\n"
        assert f.read(4) == b"more"
        f.write(b"abc")

        f.write_buffer_limit = 2
        assert f.write_buffer_len == 3  # setting it does not flush
        f.write(b"y" * 100000)
        assert f.write_buffer_len == 100003
        f.discard_write_buffer()
        assert f.write_buffer_len == 0

        f.write_buffer_limit = 0
        f.writelines([b"p", bytearray(b"q"), memoryview(b"r")])
        assert f.write_buffer_len == 0
        assert f.read(3) == b"pqr"
        f.write_buffer_limit = -1
        assert f.write_buffer_limit == 8192


def test_one_tasklet_reads_while_another_writes_the_same_file():
    a, b = coio.socketpair()
    left = coio.nbfile(a.fileno(), a.fileno())
    right = coio.nbfile(b.fileno(), b.fileno())
    data = os.urandom(3 << 20)
    got = []
    # Each side writes more than the socket buffers hold before it reads.
    for f in (left, right):
        spawn(f.write, data)
        spawn(lambda f=f: got.append(f.read(len(data))))
    stackless.run()
    assert got == [data, data]
    a.close()
    b.close()


def test_write_errors_propagate_unchanged():
    r, w = os.pipe()
    os.close(r)
    with coio.nbfile(-1, w, write_buffer_limit=0, do_close=True) as f:
        with pytest.raises(BrokenPipeError):
            f.write(b"x")
        f.discard_write_buffer()
    r, w = os.pipe()
    with coio.nbfile(-1, w, do_close=True) as f, pytest.raises(OSError) as info:
        f.read(1)
    assert info.value.errno == errno.EBADF
    os.close(r)


# --- timeouts ------------------------------------------------------------


def test_read_timeouts(f):
    assert f.timeout is None and f.gettimeout() is None
    with pytest.raises(ValueError):
        f.settimeout(-1)
    f.settimeout(0)
    with pytest.raises(BlockingIOError) as info:
        f.readline()
    assert info.value.errno == errno.EAGAIN
    f.settimeout(0.01)
    assert f.timeout == 0.01
    with pytest.raises(TimeoutError, match="^timed out$"):
        f.read(1)
    f.write(b"part")
    with pytest.raises(TimeoutError):
        f.readline()
    f.write(b"ial\n")
    assert f.readline() == b"partial\n"  # nothing got lost


def test_timeout_bounds_each_wait_not_the_call(f):
    f.settimeout(0.2)

    def dribble():
        for _ in range(6):
            coio.sleep(0.05)
            f.write(b"x")

    spawn(dribble)
    started = time.monotonic()
    assert f.read(6) == b"x" * 6
    assert time.monotonic() - started > 0.25
    stackless.run()


def test_write_timeouts():
    r, w = os.pipe()
    with coio.nbfile(r, w, write_buffer_limit=0, timeout=0, do_close=True) as f:
        with pytest.raises(BlockingIOError):
            f.write(b"x" * (1 << 20))
        assert 0 < f.write_buffer_len < 1 << 20  # the rest waits in the buffer
        f.settimeout(0.01)
        with pytest.raises(TimeoutError, match="^timed out$"):
            f.flush()
        f.discard_write_buffer()


def test_an_early_wakeup_retries_and_a_bomb_ends_the_read(f):
    got = []
    reader = spawn(lambda: got.append(f.readline()))
    stackless.schedule()
    reader.insert()
    stackless.schedule()
    assert reader.alive and not got  # woken early: waits again
    f.write(b"line\n")
    stackless.run()
    assert got == [b"line\n"]

    class Marker(Exception):
        pass

    def doomed():
        with pytest.raises(Marker):
            f.read(1)
        got.append("bombed")

    reader = spawn(doomed)
    stackless.schedule()
    reader.raise_exception(Marker)
    stackless.run()
    assert got[-1] == "bombed"


# --- closing -------------------------------------------------------------


def test_close_while_another_tasklet_waits(f):
    errors = []

    def reader():
        try:
            f.readline()
        except OSError as exc:
            errors.append(exc.errno)

    spawn(reader)
    stackless.schedule()
    assert _coio.waiting() == 1
    f.close()
    stackless.run()
    assert errors == [errno.EBADF]
    assert f.closed and f.close() is None


def test_close_flushes_and_owns_fds_only_with_do_close():
    r, w = os.pipe()
    f = coio.nbfile(r, w)
    f.write(b"kept")
    f.close()
    assert os.read(r, 10) == b"kept"  # flushed, fds still open
    with coio.nbfile(r, w, do_close=True) as f:
        assert f.fileno() == r and f.write_fileno() == w and not f.isatty()
        assert f.mode == "r+" and f.name is None
    assert f.closed
    for fd in (r, w):
        with pytest.raises(OSError):
            os.fstat(fd)


def test_close_ref():
    class Ref:
        def close(self):
            return "status"

    r, w = os.pipe()
    assert coio.nbfile(r, w, do_close=True, close_ref=Ref()).close() == "status"
    assert coio.nbfile(r, w, close_ref=Ref()).close() is None
    os.close(r)
    os.close(w)


# --- nblimitreader ---------------------------------------------------------


def test_nblimitreader(f):
    f.write(b"line one\r\nline two\nrest of body|next request")
    body = coio.nblimitreader(f, 31)
    assert len(body) == 31
    assert body.readline() == b"line one\r\n"
    assert body.readline_stripend() == b"line two"
    assert len(body) == 12
    assert body.readline(4) == b"rest"
    assert body.read(3) == b" of"
    assert body.read() == b" body"
    assert len(body) == 0 and body.read() == b"" and body.readline() == b""
    assert body.readline_stripend() is None
    assert f.read(1) == b"|"

    assert list(coio.nblimitreader(f, 4)) == [b"next"]
    assert f.read(8) == b" request"
    f.write(b"a\nb\nc")
    send_eof(f)
    body = coio.nblimitreader(f, 10)
    assert body.readlines() == [b"a\n", b"b\n", b"c"]
    assert len(body) == 5


def test_nblimitreader_discard_to_read_limit(f):
    f.write(b"0123456789abc")
    body = coio.nblimitreader(f, 10)
    assert body.read(2) == b"01"
    assert body.discard_to_read_limit() == 0
    assert len(body) == 0
    assert f.read(3) == b"abc"
    f.write(b"xy")
    send_eof(f)
    assert coio.nblimitreader(f, 5).discard_to_read_limit() == 3


# --- fdopen, pipe, popen ---------------------------------------------------


def test_fdopen_modes():
    r, w = os.pipe()
    reader = coio.fdopen(r)
    writer = coio.fdopen(w, "wb")
    assert reader.fileno() == r and reader.write_fileno() == -1 and reader.name == r
    assert writer.fileno() == w and writer.mode == "wb"
    assert writer.write_buffer_limit == 8192
    writer.write(b"through\n")
    writer.flush()
    assert reader.readline() == b"through\n"
    writer.close()
    assert reader.read() == b""
    reader.close()
    with pytest.raises(ValueError):
        coio.fdopen(0, "rw")


def test_fdopen_buffering_and_ttys():
    master, slave = os.openpty()
    try:
        with coio.fdopen(slave, "r+", do_close=False) as tty:
            assert tty.isatty() and tty.write_buffer_limit == 1
        with coio.fdopen(slave, "w", buffering=0, do_close=False) as tty:
            assert tty.write_buffer_limit == 0
        with coio.fdopen(slave, "w", buffering=0, write_buffer_limit=100,
                         do_close=False) as tty:
            assert tty.write_buffer_limit == 100
    finally:
        os.close(master)
        os.close(slave)


def test_pipe():
    reader, writer = coio.pipe()
    assert not os.get_blocking(reader.fileno())
    assert not os.get_blocking(writer.write_fileno())
    spawn(lambda: (writer.write(b"x" * 300000), writer.close()))
    assert reader.read() == b"x" * 300000
    reader.close()


def test_popen_reads_while_other_tasklets_run():
    ticks = []

    def ticker():
        while len(ticks) < 5:
            ticks.append(time.monotonic())
            coio.sleep(0.05)

    spawn(ticker)
    stackless.schedule()
    started = time.monotonic()
    f = coio.popen("sleep 0.3; echo done")
    assert f.read() == b"done\n"
    finished = time.monotonic()
    assert f.close() is None
    assert sum(started < t < finished for t in ticks) >= 3
    stackless.run()


def test_popen_exit_status_and_write_mode(tmp_path):
    f = coio.popen("echo out; exit 3")
    assert f.readline() == b"out\n"
    assert f.close() == 3 << 8
    target = tmp_path / "out"
    f = coio.popen("cat > %s" % target, "w")
    assert f.fileno() == f.write_fileno() >= 0
    f.write(b"to the child")
    assert f.close() is None
    assert target.read_bytes() == b"to the child"
    with pytest.raises(ValueError):
        coio.popen("true", "r+")
