"""Hostile local clients for tests/clients.rs, run inside the bond's namespace.

hostile.py metrics ADDR   -- 300 idle clients, a trickler, an 8 MiB header line, then a scrape
Prints one line per check, "name value"; exits non-zero on an unexpected error.
"""
import socket
import sys
import time
import urllib.request


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
        return r.status, r.read().decode()


def connect(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    return s


def metrics(addr):
    idle = []
    for _ in range(300):
        try:
            idle.append(connect(addr))
        except OSError as e:
            print("connect_error", e.errno)
            break
    trickler = connect(addr)
    trickler.send(b"GET /metrics HTTP/1.1\r\n")
    status, page = scrape(addr)
    print("scrape_with_idle_clients", status, int("bond_dp_bond_up" in page))
    # A header line without end: answered 431 (or closed) after the limit, never buffered.
    big = connect(addr)
    sent = 0
    answer = b""
    try:
        chunk = b"X-Big: " + b"a" * 65536
        while sent < 8 << 20:
            big.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    try:
        big.settimeout(5)
        answer = big.recv(4096)
    except OSError:
        pass
    print("oversized_sent_bytes", sent)
    print("oversized_answer", answer.split(b"\r\n")[0].decode() or "closed")
    for s in idle:
        s.close()
    trickler.close()
    status, page = scrape(addr)
    print("scrape_after", status, int("bond_dp_bond_up" in page))


if __name__ == "__main__":
    {"metrics": metrics}[sys.argv[1]](*sys.argv[2:])
