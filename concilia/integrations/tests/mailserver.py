"""A real IMAP server for the email tests: Debian's Dovecot, started on a free loopback port
with its own configuration, users and Maildirs in a temporary folder (`.ci/run` installs
dovecot-imapd where it is missing). Mail reaches it the way a customer's would reach a mailbox:
by IMAP APPEND, which is what an MTA's delivery agent does to the same Maildir."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Dovecot:
    port: int
    root: Path
    process: subprocess.Popen
    # Every user name logs in with this password (a static passdb): each test its own mailbox.
    password: str = PASSWORD

    def client(self, user: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.login(user, self.password)
        return client

    def deliver(self, user: str, *messages: bytes, folder: str = "INBOX") -> None:
        client = self.client(user)
        try:
            for message in messages:
                status, _data = client.append(folder, None, None, message)
                assert status == "OK", _data
        finally:
            client.logout()

    def count(self, user: str, criterion: str = "ALL", folder: str = "INBOX") -> int:
        client = self.client(user)
        try:
            client.select(folder)
            _status, data = client.search(None, criterion)
            return len(data[0].split())
        finally:
            client.logout()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _mail_owner() -> tuple[int, int, str, str]:
    """Dovecot will not deliver as root: as root, mail belongs to the system's 'mail' user."""
    if os.getuid() != 0:
        me = pwd.getpwuid(os.getuid()).pw_name
        return os.getuid(), os.getgid(), me, me
    mail = pwd.getpwnam("mail")
    return mail.pw_uid, mail.pw_gid, "dovenull", "dovecot"


def start_dovecot() -> Dovecot:
    """Dovecot in a new folder of its own (readable by Dovecot's unprivileged processes, which
    pytest's temporary folders are not)."""
    if not os.path.exists(DOVECOT):
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd; .ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="concilia-dovecot-"))
    root.chmod(0o755)
    uid, gid, login_user, internal_user = _mail_owner()
    port = free_port()
    for folder in ("run", "state", "home"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    os.chown(root / "home", uid, gid)
    config = root / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {min(uid, 500)}
default_login_user = {login_user}
default_internal_user = {internal_user}
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
}}
"""
    )
    process = subprocess.Popen(  # noqa: S603 - a fixed program with our own configuration
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Dovecot did not start: {process.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return Dovecot(port=port, root=root, process=process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("Dovecot did not answer within 20 s")
