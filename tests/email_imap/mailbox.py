"""A real IMAP client (Python's imaplib) that plays the mail server's other
users for tests/email_imap.rs: it creates the test mailbox, delivers messages
into it, and reports or changes flags.

usage: mailbox.py create MAILBOX
       mailbox.py append MAILBOX MESSAGE_FILE
       mailbox.py flags MAILBOX            (prints {"uid": ["\\Seen", ...]})
       mailbox.py unseen MAILBOX UID
       mailbox.py count MAILBOX            (prints the number of messages)
Server and login from DOVECOT_IMAPS_PORT, DOVECOT_USER, DOVECOT_PASSWORD, DOVECOT_CA.
"""
import imaplib
import json
import os
import re
import ssl
import sys

ctx = ssl.create_default_context(cafile=os.environ["DOVECOT_CA"])
imap = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["DOVECOT_IMAPS_PORT"]), ssl_context=ctx)
imap.login(os.environ["DOVECOT_USER"], os.environ["DOVECOT_PASSWORD"])
command, mailbox = sys.argv[1], sys.argv[2]

if command == "create":
    typ, _ = imap.create(mailbox)
    assert typ == "OK", typ
elif command == "append":
    # Delivered with CRLF line ends, as a mail server stores it.
    message = open(sys.argv[3], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    typ, _ = imap.append(mailbox, None, None, message)
    assert typ == "OK", typ
elif command == "flags":
    imap.select(mailbox, readonly=True)
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
    flags = {}
    for item in data:
        if not item:
            continue
        text = item.decode() if isinstance(item, bytes) else item[0].decode()
        m = re.search(r"UID (\d+) FLAGS \(([^)]*)\)", text) or re.search(r"FLAGS \(([^)]*)\) UID (\d+)", text)
        if m and text.find("UID") < text.find("FLAGS"):
            flags[m.group(1)] = m.group(2).split()
        elif m:
            flags[m.group(2)] = m.group(1).split()
    print(json.dumps(flags))
elif command == "unseen":
    imap.select(mailbox)
    typ, _ = imap.uid("STORE", sys.argv[3], "-FLAGS.SILENT", "(\\Seen)")
    assert typ == "OK", typ
elif command == "count":
    typ, data = imap.select(mailbox, readonly=True)
    assert typ == "OK", typ
    print(int(data[0]))
else:
    raise SystemExit(f"unknown command {command}")
imap.logout()
