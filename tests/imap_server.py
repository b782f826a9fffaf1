"""A real IMAP server for the bounce tests: Debian's dovecot (``dovecot-imapd``), run in
the foreground with a configuration generated in a temporary folder (its own run, state
and mail folders, one user with a plain password, no TLS, 127.0.0.1 only).

Dovecot cannot be handed a listening socket, and ``port = 0`` turns its listener off, so
the port is one the kernel gave us a moment before (bound to port 0 and read back, then
released for dovecot): ``start`` tries again with another port if dovecot loses that race.
``.ci/ensure-dovecot`` installs the package (``make test`` runs it).
"""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "bounces@example.org"
PASSWORD = "imap-s3cret"
DOVECOT = "/usr/sbin/dovecot"
_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {home}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}/users/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


@dataclass(frozen=True)
class ImapServer:
    """Where the test server listens and who may log in."""

    port: int
    tls_port: int = 0
    """The implicit-TLS port (0: no TLS); ``port`` offers STARTTLS then."""
    user: str = USER
    password: str = PASSWORD
    host: str = "127.0.0.1"

    def client(self) -> imaplib.IMAP4:
        """A logged-in client (the test's own view of the mailbox)."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def deliver(self, message: bytes, folder: str = "INBOX") -> None:
        """Put a message in ``folder`` as an MTA's local delivery would."""
        conn = self.client()
        try:
            status, data = conn.append(folder, None, None, message)
            assert status == "OK", data
        finally:
            conn.logout()

    def messages(self, folder: str = "INBOX") -> list[tuple[str, bytes]]:
        """``(flags, raw)`` of each message in ``folder``."""
        conn = self.client()
        try:
            status, _ = conn.select(folder)
            assert status == "OK", folder
            _, data = conn.uid("SEARCH", "ALL")
            out = []
            for uid in (data[0] or b"").split():
                _, parts = conn.uid("FETCH", uid.decode(), "(FLAGS BODY.PEEK[])")
                head, raw = parts[0]
                out.append((head.decode(), raw))
            return out
        finally:
            conn.logout()


def _ports(n: int) -> list[int]:
    """``n`` different ports the kernel gave out (held together, so never the same one)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(64).startswith(b"* OK")
    except OSError:
        return False


@contextmanager
def dovecot(root: Path, tls: tuple[Path, Path] | None = None) -> Iterator[ImapServer]:
    """Dovecot serving one user's maildir under ``root`` until the block ends; with
    ``tls`` (certificate, key), also on an implicit-TLS port, and STARTTLS on the other."""
    if not Path(DOVECOT).exists():
        raise RuntimeError(
            "dovecot is missing: the bounce tests need Debian's dovecot-imapd "
            "(`bash .ci/ensure-dovecot`, or `apt-get install dovecot-imapd`)"
        )
    root.mkdir(parents=True, exist_ok=True)
    # The mail and the password file live outside ``root`` (a pytest folder that only its
    # owner may enter), in a folder of their own that dovecot's user can reach.
    home = Path(tempfile.mkdtemp(prefix="newsletter-imap-"))
    (home / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n", encoding="ascii")
    if os.geteuid() == 0:
        import pwd

        internal, login = "dovecot", "dovenull"
        uid, gid = pwd.getpwnam("dovecot").pw_uid, pwd.getpwnam("dovecot").pw_gid
        shutil.chown(home, uid, gid)
    else:  # unprivileged: every process runs as us
        import pwd

        me = pwd.getpwuid(os.getuid()).pw_name
        internal = login = me
        uid, gid = os.getuid(), os.getgid()
    ssl_lines = f"ssl = yes\nssl_cert = <{tls[0]}\nssl_key = <{tls[1]}" if tls else "ssl = no"
    for _ in range(5):
        port, tls_port = _ports(2) if tls else (*_ports(1), 0)
        conf = root / "dovecot.conf"
        conf.write_text(
            _CONFIG.format(
                root=root,
                home=home,
                port=port,
                tls_port=tls_port,
                ssl=ssl_lines,
                uid=uid,
                gid=gid,
                internal=internal,
                login=login,
            ),
            encoding="ascii",
        )
        proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None and not _accepts(port):
            time.sleep(0.05)
        if proc.poll() is None and _accepts(port):
            break
        _stop(proc)
    else:
        shutil.rmtree(home, ignore_errors=True)
        log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
        raise RuntimeError(f"dovecot did not start: {log[-2000:]}")
    try:
        yield ImapServer(port, tls_port)
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
