"""The README walk-through runs as written: every command of its ```sh blocks, in order,
in one shell, in a fresh folder (a copy of config/, no database, no out/), with the file
mailer and the bundled feed files only (the network is closed through a proxy that
refuses). Each line must exit 0.

Two kinds of line are handled rather than run as they stand: ``make ...`` (the targets
run this very suite; `make demo` is checked on its own), and the long-running ``newsletter
run`` / ``newsletter serve``, which are started on port 0, stopped with SIGTERM once they
say they are up, and must then exit 0.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import HANG_GUARD, process_env, refusing_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

LONG_RUNNING = re.compile(r"^newsletter (run|serve)\b")

HELPERS = r"""
__long() {  # start, wait until it is up, SIGTERM, return its exit code
  local log="$__tmp/long.log" ready="event=started"
  case " $* " in *" --web "*|*" serve "*) ready="event=web_listening";; esac
  "$@" --port 0 2> "$log" &
  local pid=$! i=0
  while [ $i -lt 600 ] && kill -0 $pid 2>/dev/null && ! grep -q "$ready" "$log"; do
    sleep 0.1; i=$((i+1))
  done
  kill -TERM $pid 2>/dev/null
  wait $pid
  local rc=$?
  [ $rc -eq 0 ] || cat "$log" >&2
  return $rc
}
"""


def readme_commands() -> list[str]:
    """The command lines of the README's ```sh blocks, in order (comments kept: the
    shell drops them)."""
    text = README.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line.strip())
    return lines


def script(commands: list[str]) -> str:
    out = ["set -u", HELPERS]
    for n, line in enumerate(commands):
        if line.startswith("make "):
            continue
        command = line.split(" #", 1)[0].rstrip() if LONG_RUNNING.match(line) else line
        if LONG_RUNNING.match(command):
            command = "__long " + command
        out.append(command)
        out.append(f'echo "__RC__ {n} $?" >> "$__tmp/rc.log"')
    return "\n".join(out) + "\n"


def test_the_readme_walk_through_runs(tmp_path: Path) -> None:
    commands = readme_commands()
    assert any("newsletter send" in c for c in commands)
    work = tmp_path / "work"
    shutil.copytree(ROOT / "config", work / "config")
    (work / ".venv").symlink_to(Path(sys.executable).parents[1])
    closed = f"http://127.0.0.1:{refusing_port()}"
    env = process_env(
        __tmp=str(tmp_path),
        PATH=f"{Path(sys.executable).parent}:{process_env()['PATH']}",
        HTTP_PROXY=closed,
        HTTPS_PROXY=closed,
        http_proxy=closed,
        https_proxy=closed,
        NO_PROXY="127.0.0.1,localhost",
    )
    proc = subprocess.run(
        ["bash", "-c", script(commands)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD * 5,
    )
    codes = {}
    rc_log = tmp_path / "rc.log"
    for line in rc_log.read_text().splitlines() if rc_log.exists() else []:
        _, n, rc = line.split()
        codes[int(n)] = int(rc)
    failed = {commands[n]: rc for n, rc in codes.items() if rc != 0}
    ran = [c for c in commands if not c.startswith("make ")]
    assert not failed, f"{failed}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert len(codes) == len(ran), proc.stderr
    # What the walk-through promises is there.
    assert sorted(p.name for p in (work / "out" / "mail").rglob("*.eml"))
    assert (work / "out" / "arxiv.html").exists() and (work / "out" / "preview.html").exists()


def test_readme_lines_are_shell_words() -> None:
    for line in readme_commands():
        shlex.split(line, comments=True)
