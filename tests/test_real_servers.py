"""The real-server fixtures (tests/real_servers.py) give working servers.

Checked with blocking stdlib or pure-Python clients only, so that a failure
here is the fixture's and not Syncless's. DNS goes by hand-built packets: no
resolver of the machine or of Syncless is involved.
"""
import ipaddress
import random
import socket
import struct

import mysql.connector
import pymysql
import pytest
import redis

pytestmark = pytest.mark.timeout(120)

A, CNAME, PTR, TXT, AAAA = 1, 5, 12, 16, 28
NOERROR, NXDOMAIN = 0, 3


def dns_query(name, qtype):
    """(transaction id, packet) asking for ``name``'s records of ``qtype``, recursion desired."""
    transaction_id = random.randrange(1 << 16)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
    packet = struct.pack("!6H", transaction_id, 0x0100, 1, 0, 0, 0) + question + b"\0" + struct.pack("!2H", qtype, 1)
    return transaction_id, packet


def read_name(message, offset):
    """The dotted name at ``offset`` and the offset after it (following compression pointers)."""
    labels, end = [], None
    while message[offset] != 0:
        if message[offset] >= 0xC0:
            end = end or offset + 2
            offset = struct.unpack_from("!H", message, offset)[0] & 0x3FFF
            continue
        length = message[offset]
        labels.append(message[offset + 1:offset + 1 + length].decode())
        offset += 1 + length
    return ".".join(labels), end or offset + 1


def parse_reply(message, transaction_id):
    """(rcode, [(owner, type, value), ...]) for the answer section of ``message``."""
    reply_id, flags, questions, answers = struct.unpack_from("!4H", message)
    assert reply_id == transaction_id and flags & 0x8000, "not a reply to our query"
    offset = 12
    for _ in range(questions):
        offset = read_name(message, offset)[1] + 4
    records = []
    for _ in range(answers):
        owner, offset = read_name(message, offset)
        rtype, _, _, length = struct.unpack_from("!2HIH", message, offset)
        offset += 10
        data = message[offset:offset + length]
        if rtype == A:
            value = socket.inet_ntop(socket.AF_INET, data)
        elif rtype == AAAA:
            value = socket.inet_ntop(socket.AF_INET6, data)
        elif rtype in (CNAME, PTR):
            value = read_name(message, offset)[0]
        elif rtype == TXT:
            value = data[1:1 + data[0]].decode()  # our records hold one string each
        else:
            value = data
        records.append((owner, rtype, value))
        offset += length
    return flags & 0xF, records


def ask_udp(server, name, qtype):
    transaction_id, packet = dns_query(name, qtype)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(packet, (server.address, server.port))
        return parse_reply(sock.recv(4096), transaction_id)


def ask_tcp(server, name, qtype):
    transaction_id, packet = dns_query(name, qtype)
    with socket.create_connection((server.address, server.port), timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(packet)) + packet)
        stream = sock.makefile("rb")
        (length,) = struct.unpack("!H", stream.read(2))
        return parse_reply(stream.read(length), transaction_id)


def values(records, rtype):
    return sorted(value for _, t, value in records if t == rtype)


def test_dns_a_record(dns_server):
    assert dns_server.zone.a["host.syncless.test"] == ["127.0.0.2"]
    assert ask_udp(dns_server, "host.syncless.test", A) == (NOERROR, [("host.syncless.test", A, "127.0.0.2")])


def test_dns_several_a_records_for_one_name(dns_server):
    rcode, records = ask_udp(dns_server, "multi.syncless.test", A)
    assert rcode == NOERROR
    assert values(records, A) == ["127.0.0.3", "127.0.0.4", "127.0.0.5"]


def test_dns_aaaa_record(dns_server):
    assert ask_udp(dns_server, "v6only.syncless.test", AAAA) == (NOERROR, [("v6only.syncless.test", AAAA, "2001:db8::6")])
    assert ask_udp(dns_server, "v6only.syncless.test", A) == (NOERROR, [])


def test_dns_cname_chain(dns_server):
    assert ask_udp(dns_server, "alias.syncless.test", A) == (NOERROR, [
        ("alias.syncless.test", CNAME, "middle.syncless.test"),
        ("middle.syncless.test", CNAME, "host.syncless.test"),
        ("host.syncless.test", A, "127.0.0.2"),
    ])
    rcode, records = ask_udp(dns_server, "alias.syncless.test", AAAA)
    assert (rcode, values(records, AAAA)) == (NOERROR, ["2001:db8::2"])


@pytest.mark.parametrize("address, name", [
    ("127.0.0.9", "reverse.syncless.test"),  # an explicit PTR record
    ("127.0.0.2", "host.syncless.test"),  # implied by the A record
    ("2001:db8::6", "v6only.syncless.test"),  # implied by the AAAA record
])
def test_dns_ptr_record(dns_server, address, name):
    reverse = ipaddress.ip_address(address).reverse_pointer
    assert ask_udp(dns_server, reverse, PTR) == (NOERROR, [(reverse, PTR, name)])


def test_dns_txt_records(dns_server):
    rcode, records = ask_udp(dns_server, "txt.syncless.test", TXT)
    assert (rcode, values(records, TXT)) == (NOERROR, ["second, with a comma", "syncless test record"])


@pytest.mark.parametrize("name", ["nothing.syncless.test", "example.com"])
def test_dns_unknown_name_is_nxdomain(dns_server, name):
    assert ask_udp(dns_server, name, A) == (NXDOMAIN, [])


def test_dns_over_tcp(dns_server):
    rcode, records = ask_tcp(dns_server, "multi.syncless.test", A)
    assert (rcode, values(records, A)) == (NOERROR, ["127.0.0.3", "127.0.0.4", "127.0.0.5"])


def test_silent_dns_server_never_answers(silent_dns_server):
    before = silent_dns_server.udp_queries
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.sendto(dns_query("host.syncless.test", A)[1], (silent_dns_server.address, silent_dns_server.port))
        with pytest.raises(socket.timeout):
            sock.recv(4096)
    assert silent_dns_server.udp_queries == before + 1

    with socket.create_connection((silent_dns_server.address, silent_dns_server.port), timeout=0.3) as sock:
        packet = dns_query("host.syncless.test", A)[1]
        sock.sendall(struct.pack("!H", len(packet)) + packet)
        with pytest.raises(socket.timeout):
            sock.recv(4096)


def exercise_sql(connection, table):
    """Creates ``table``, fills it and reads it back through a DB-API connection."""
    cursor = connection.cursor()
    cursor.execute("SELECT CURRENT_USER(), DATABASE()")
    assert cursor.fetchone() == ("test@%", "test")
    cursor.execute("CREATE TABLE %s (id INT PRIMARY KEY, name VARCHAR(40)) CHARACTER SET utf8mb4" % table)
    cursor.executemany("INSERT INTO " + table + " VALUES (%s, %s)", [(1, "tasklet"), (2, "grünlet ☃")])
    connection.commit()
    cursor.execute("SELECT id, name FROM " + table + " WHERE id >= %s ORDER BY id", (1,))
    assert [tuple(row) for row in cursor.fetchall()] == [(1, "tasklet"), (2, "grünlet ☃")]
    cursor.execute("DROP TABLE " + table)
    cursor.close()


def test_mariadb_with_pymysql(mariadb_server):
    connection = pymysql.connect(**mariadb_server.connect_args, charset="utf8mb4")
    try:
        exercise_sql(connection, "pymysql_check")
    finally:
        connection.close()


def test_mariadb_with_mysql_connector(mariadb_server):
    connection = mysql.connector.connect(**mariadb_server.connect_args, use_pure=True, charset="utf8mb4")
    try:
        exercise_sql(connection, "connector_check")
    finally:
        connection.close()


def test_mariadb_rejects_a_wrong_password(mariadb_server):
    args = dict(mariadb_server.connect_args, password="wrong")
    with pytest.raises(pymysql.err.OperationalError) as error:
        pymysql.connect(**args)
    assert error.value.args[0] == 1045  # ER_ACCESS_DENIED_ERROR


def test_redis(redis_server):
    client = redis.Redis(host=redis_server.host, port=redis_server.port, socket_timeout=5)
    try:
        assert client.set("real-servers:key", "value")
        assert client.get("real-servers:key") == b"value"
        assert client.rpush("real-servers:list", "a", "b", "c") == 3
        assert client.lpop("real-servers:list") == b"a"
        assert client.rpop("real-servers:list") == b"c"
        assert client.lrange("real-servers:list", 0, -1) == [b"b"]
        assert client.delete("real-servers:key", "real-servers:list") == 2
    finally:
        client.close()
