"""An SMTP server on loopback for the email sender's tests (tests/send.rs).

Built on aiosmtpd. It listens on 127.0.0.1 at a free port, prints
`PORT <n>` on its first line of output once it accepts connections, and
writes every message it takes to DIR as `<n>.eml` (the bytes received after
DATA) beside `<n>.json` (the envelope: `mail_from`, `rcpt_tos`, whether the
session was encrypted, the user that authenticated). It runs until it is
killed or its standard input closes.

Options:
  --dir DIR              where the messages go (required)
  --starttls CERT KEY    offer STARTTLS with this PEM certificate and key, and
                         require it before MAIL
  --tls CERT KEY         speak TLS from the first byte (SMTPS)
  --auth USER PASSWORD   require AUTH (PLAIN or LOGIN) with these credentials
  --temp-fail ADDRESS    answer RCPT TO:<ADDRESS> with 451 (repeatable)
  --perm-fail ADDRESS    answer RCPT TO:<ADDRESS> with 550 (repeatable)
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError as e:  # reported by the test as is
    sys.stderr.write(f"aiosmtpd is not importable by {sys.executable}: {e}\n")
    sys.exit(3)

TEMP_REPLY = "451 4.3.0 Mailbox {} sementara tidak tersedia, coba lagi nanti"
PERM_REPLY = "550 5.1.1 <{}>: Recipient address rejected: User unknown"


class Handler:
    def __init__(self, directory, temp_fail, perm_fail):
        self.directory = directory
        self.temp_fail = {a.lower() for a in temp_fail}
        self.perm_fail = {a.lower() for a in perm_fail}
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.temp_fail:
            return TEMP_REPLY.format(address)
        if address.lower() in self.perm_fail:
            return PERM_REPLY.format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, str(self.count))
        user = None
        if isinstance(session.auth_data, LoginPassword):
            user = session.auth_data.login.decode("utf-8", "replace")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "encrypted": server.transport.get_extra_info("ssl_object") is not None,
            "user": user,
        }
        # The message first, then its envelope: a test waits for the .json.
        with open(base + ".eml.part", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(base + ".eml.part", base + ".eml")
        with open(base + ".json.part", "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.replace(base + ".json.part", base + ".json")
        return "250 2.0.0 Ok: queued as SINK{}".format(self.count)


def context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # Not handled: aiosmtpd answers 535 itself.
        return AuthResult(success=False, handled=False)

    return check


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    p.add_argument("--temp-fail", action="append", default=[])
    p.add_argument("--perm-fail", action="append", default=[])
    args = p.parse_args()

    handler = Handler(args.dir, args.temp_fail, args.perm_fail)
    kwargs = {"hostname": "sink.example.id", "ident": "aduan test sink"}
    if args.starttls:
        kwargs["tls_context"] = context(*args.starttls)
        kwargs["require_starttls"] = True
    if args.auth:
        kwargs["authenticator"] = authenticator(*args.auth)
        kwargs["auth_required"] = True
        # With --tls the whole session is encrypted, but aiosmtpd only counts STARTTLS.
        kwargs["auth_require_tls"] = not args.tls
    server_ssl = context(*args.tls) if args.tls else None

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, loop=loop, **kwargs),
        host="127.0.0.1",
        port=0,
        ssl=server_ssl,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)

    # Stop when the test goes away (its end of our stdin closes).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
