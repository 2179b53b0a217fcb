"""Throw-away local servers for the test kit and the demo: a free loopback port, stopping a server
process, and a Dovecot IMAP server.

`start_dovecot` runs Debian's Dovecot (``dovecot-imapd``; `find_dovecot`) from a configuration of its
own in a temporary directory: passwd-file accounts (one file per account, seen at once), Maildir, TLS
required with a self-signed certificate for 127.0.0.1 made here (trust `ImapAccount.ca_file`),
listening on 127.0.0.1 on two free ports, implicit TLS (``port``) and STARTTLS (``starttls_port``). It
offers IMAP4rev1 with IDLE, MOVE and UIDPLUS, as Dovecot does by default. Every Dovecot process runs as
one unprivileged account: the current user, or when started as root the ``dovecot`` account the
package made (else ``nobody``). Nothing of the system's ``/etc/dovecot`` is read.

The test kit's fixtures are in `hub.testing.imap`; the mailbox plugin's demo starts one as well. Only
the standard library and `cryptography`: no test framework needed.
"""

from __future__ import annotations

import contextlib
import datetime
import grp
import imaplib
import ipaddress
import os
import pwd
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "DovecotServer",
    "DovecotUnavailable",
    "ImapAccount",
    "ServerUnavailable",
    "TlsFiles",
    "find_dovecot",
    "free_port",
    "self_signed",
    "start_dovecot",
    "start_in_scratch",
    "stop_process",
    "unprivileged_account",
]

START_TIMEOUT = 30  # seconds to wait for Dovecot to listen
UNPRIVILEGED_USERS = ("dovecot", "nobody")
SHORT_TMP = "/tmp"  # noqa: S108 - mkdtemp makes a private directory in it
S = TypeVar("S")
CERTIFICATE_DAYS = 365  # far beyond the hub's expiry warning (30 days by default): no noise


class ServerUnavailable(RuntimeError):
    """A throw-away server could not be started here (binary missing, no account, did not listen)."""


def unprivileged_account(names: tuple[str, ...]) -> pwd.struct_passwd | None:
    """The account a throw-away server runs as when we are root (servers refuse to run as root); None
    when we are not root (it runs as us)."""
    if os.geteuid() != 0:
        return None
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerUnavailable(f"running as root and no unprivileged account ({', '.join(names)}) to run it as")


def start_in_scratch(prefix: str, start: Callable[[Path], S], attempts: int = 3) -> S:
    """`start(directory)` in a fresh private directory, again in a new one when it fails (another
    process took the free port it was given meanwhile); the last `ServerUnavailable` if none started.

    `start` cleans up after itself when it fails; the directory is removed here.
    """
    error: ServerUnavailable | None = None
    for _ in range(attempts):
        # A short path: unix sockets' paths must stay below ~107 bytes ($TMPDIR may be long).
        base = Path(tempfile.mkdtemp(prefix=prefix, dir=SHORT_TMP if os.path.isdir(SHORT_TMP) else None))
        base.chmod(0o700)
        try:
            return start(base)
        except ServerUnavailable as exc:
            error = exc
            shutil.rmtree(base, ignore_errors=True)
    assert error is not None
    raise error


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, and SIGKILL if the process has not ended within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class TlsFiles:
    """A server's PEM certificate (self-signed: also what clients trust) and key."""

    cert: Path
    key: Path


def self_signed(directory: Path, name: str = "127.0.0.1") -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (and localhost), written to `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "server-cert.pem", directory / "server-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    files.key.chmod(0o600)
    return files


class DovecotUnavailable(ServerUnavailable):
    """Dovecot could not be started."""


def find_dovecot() -> Path | None:
    """The Dovecot binary: ``$AKTENHUB_DOVECOT``, else ``/usr/sbin/dovecot``, else on ``PATH``."""
    explicit = os.environ.get("AKTENHUB_DOVECOT")
    if explicit:
        return Path(explicit) if os.access(explicit, os.X_OK) else None
    if os.access("/usr/sbin/dovecot", os.X_OK):
        return Path("/usr/sbin/dovecot")
    found = shutil.which("dovecot")
    return Path(found) if found else None


@dataclass
class ImapAccount:
    """One account on the test server, and what a test does with its mailbox from the outside."""

    host: str
    port: int
    starttls_port: int
    user: str
    password: str
    ca_file: Path
    address: str = field(init=False)

    def __post_init__(self) -> None:
        self.address = f"{self.user}@example.org"

    @contextlib.contextmanager
    def session(self) -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in stdlib IMAP session over implicit TLS (the test's own view of the mailbox)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=30)
        try:
            imap.login(self.user, self.password)
            yield imap
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def append(self, message: bytes, folder: str = "INBOX") -> None:
        """Put a message into `folder` (IMAP APPEND), as a mail server's delivery would."""
        with self.session() as imap:
            status, data = imap.append(folder, None, None, message)
            if status != "OK":
                raise AssertionError(f"APPEND to {folder} failed: {data!r}")

    def create_folder(self, *folders: str) -> None:
        """Create folders (those that exist already are left as they are)."""
        with self.session() as imap:
            for folder in folders:
                imap.create(folder)

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """The messages in `folder` in UID order, none flagged \\Deleted; [] if the folder does not exist."""
        with self.session() as imap:
            status, _ = imap.select(folder, readonly=True)
            if status != "OK":
                return []
            status, data = imap.uid("SEARCH", "UNDELETED")
            uids = data[0].split() if status == "OK" and data and data[0] else []
            found: list[bytes] = []
            for uid in uids:
                _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
                found.extend(p[1] for p in parts if isinstance(p, tuple))
            return found


@dataclass
class DovecotServer:
    """A running throw-away Dovecot."""

    binary: Path
    base: Path
    port: int
    starttls_port: int
    certificate: TlsFiles
    run_as: pwd.struct_passwd
    settings: str = ""  # further configuration lines, e.g. `imap_capability = ...` for a poorer server
    process: subprocess.Popen[bytes] | None = None

    @property
    def users_dir(self) -> Path:
        """One passwd-file per account: a new account is seen at once (one shared file is re-read only
        when its modification time changes, a second later)."""
        return self.base / "users"

    def config(self) -> str:
        """The server's configuration: nothing of the system's /etc/dovecot is read."""
        base, user = self.base, self.run_as
        return f"""
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
default_internal_user = {user.pw_name}
default_internal_group = {_group(user)}
default_login_user = {user.pw_name}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{self.certificate.cert}
ssl_key = <{self.certificate.key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_dir}/%u
}}
mail_location = maildir:{base}/mail/%u
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.starttls_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    user = {user.pw_name}
  }}
  unix_listener stats-writer {{
    user = {user.pw_name}
  }}
}}
{self.settings}
"""

    def start(self) -> None:
        """Write the configuration and start Dovecot in the foreground (ports already chosen)."""
        (self.base / "dovecot.conf").write_text(self.config())
        self.users_dir.mkdir()
        for path in (self.base, *self.base.iterdir()):
            os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        root = os.geteuid() == 0
        self.process = subprocess.Popen(
            [str(self.binary), "-F", "-c", str(self.base / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.base / "stderr.log").open("wb"),
            user=self.run_as.pw_uid if root else None,
            group=self.run_as.pw_gid if root else None,
            extra_groups=[] if root else None,
            cwd=self.base,
        )
        if not (_listening(self.port, self.process) and _listening(self.starttls_port, self.process)):
            raise DovecotUnavailable(f"dovecot did not start: {self.log_tail()}")

    def add_account(self, password: str | None = None) -> ImapAccount:
        """A new account with an empty INBOX (and a random password unless given)."""
        user = f"u{secrets.token_hex(6)}"
        password = password or secrets.token_urlsafe(18)
        home = self.base / "mail" / user
        line = f"{user}:{{PLAIN}}{password}:{self.run_as.pw_uid}:{self.run_as.pw_gid}::{home}\n"
        (self.users_dir / user).write_text(line)
        return ImapAccount("127.0.0.1", self.port, self.starttls_port, user, password, self.certificate.cert)

    def stop(self) -> None:
        """Stop the server (it is thrown away)."""
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def remove(self) -> None:
        """Stop the server and remove its directory (configuration, mail, logs)."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's logs, for error messages."""
        text = ""
        for name in ("stderr.log", "dovecot.log"):
            with contextlib.suppress(OSError):
                text += (self.base / name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _group(user: pwd.struct_passwd) -> str:
    return grp.getgrgid(user.pw_gid).gr_name


def _listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    """Wait until `port` takes connections (True) or the process ends or the start times out (False)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        time.sleep(0.02)  # poll the port again: the only sign that Dovecot is listening
    return False


def start_dovecot(binary: Path, attempts: int = 3, settings: str = "") -> DovecotServer:
    """Start a throw-away Dovecot with `binary` and further configuration lines `settings` (retries
    when a free port was taken meanwhile)."""
    account = unprivileged_account(UNPRIVILEGED_USERS)
    run_as = pwd.getpwuid(os.geteuid()) if account is None else account

    def start(base: Path) -> DovecotServer:
        server = DovecotServer(binary, base, free_port(), free_port(), self_signed(base), run_as, settings)
        try:
            server.start()
        except DovecotUnavailable:
            server.stop()
            raise
        return server

    return start_in_scratch("akh-imap-", start, attempts)
