"""The short soak run: the same script as the full soak, at a size CI can afford."""
import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "soak", "soak.py")


def test_short_soak_holds_every_check():
    result = subprocess.run(
        [sys.executable, SCRIPT, "--cycles", "600", "--clients", "200", "--hold", "3",
         "--messages", "1000", "--heartbeat", "1"],
        capture_output=True, text=True, timeout=240)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "soak: all checks held" in result.stdout
    for line in ("cycles: 600", "hold: 200 websocket clients", "ordered: 1000 messages"):
        assert line in result.stdout
