"""What the TAP benchmarks share (latency.py, tcp.py): a bond-dp TAP bond on a testbed, and
a plain veth pair to compare it with, each removed when the block ends."""
import contextlib
import os
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOND_DP = os.path.join(ROOT, "target/release/bond-dp")


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True)


@contextlib.contextmanager
def veth_pair(prefix):
    """Namespaces (a, b) joined by a veth pair: 10.78.0.1 in a, 10.78.0.2 in b."""
    a, b = f"{prefix}-va", f"{prefix}-vb"
    sh(f"ip netns add {a}; ip netns add {b}")
    try:
        sh(f"ip -n {a} link add v0 type veth peer name v1 netns {b}")
        sh(f"ip -n {a} addr add 10.78.0.1/24 dev v0; ip -n {a} link set v0 up")
        sh(f"ip -n {b} addr add 10.78.0.2/24 dev v1; ip -n {b} link set v1 up")
        yield a, b
    finally:
        sh(f"ip netns del {a}; ip netns del {b}", check=False)


@contextlib.contextmanager
def tap_bond(prefix, binary, options):
    """`binary` running bond0 (a TAP at 10.77.0.1) over m0,m1 of a testbed `prefix`, once the
    peer (10.77.0.2) answers; yields the daemon's process."""
    run = tempfile.mkdtemp()
    sh(f"{ROOT}/scripts/testbed.sh up {prefix} 2")
    bond = subprocess.Popen(
        ["ip", "netns", "exec", f"{prefix}-bond", binary, "run", "--bond", "bond0",
         "--members", "m0,m1", "--options", options, "--run-dir", run, "--log-level", "warn"])
    try:
        for _ in range(100):
            if sh(f"ip -n {prefix}-bond link show bond0", check=False).returncode == 0:
                break
            time.sleep(0.1)
        sh(f"ip -n {prefix}-bond addr replace 10.77.0.1/24 dev bond0")
        sh(f"ip netns exec {prefix}-bond ping -c 3 -i 0.2 -W 1 10.77.0.2", check=False)
        yield bond
    finally:
        bond.terminate()
        bond.wait()
        sh(f"{ROOT}/scripts/testbed.sh down {prefix}", check=False)
