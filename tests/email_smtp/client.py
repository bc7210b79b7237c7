"""A real SMTP client (Python's smtplib) for tests/email_smtp.rs.

usage: client.py SCENARIO PORT MESSAGE_FILE [CA_FILE]
Prints one JSON object: what the server answered.
"""
import hashlib
import json
import smtplib
import ssl
import sys

scenario, port, message_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cafile = sys.argv[4] if len(sys.argv) > 4 else None
# On the wire every line ends in CRLF, as a mail server sends it.
message = open(message_file, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
out = {}

smtp = smtplib.SMTP("127.0.0.1", port, timeout=20)
smtp.ehlo("klien.example.id")
out["features"] = sorted(smtp.esmtp_features.keys())
sender, rcpt = "warga@example.id", ["pengaduan@lapor.example.go.id"]

try:
    if scenario == "starttls":
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        code, _ = smtp.starttls(context=ctx)
        out["starttls"] = code
        smtp.ehlo("klien.example.id")
        out["features_after_tls"] = sorted(smtp.esmtp_features.keys())
        smtp.sendmail(sender, rcpt, message)
        out["result"] = 250
    elif scenario == "opportunistic":
        # As a sending server encrypts by default: with whatever certificate
        # is offered, unverified.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        code, _ = smtp.starttls(context=ctx)
        out["starttls"] = code
        out["tls_version"] = smtp.sock.version()
        der = smtp.sock.getpeercert(binary_form=True)
        out["certificate_sha256"] = hashlib.sha256(der).hexdigest()
        smtp.ehlo("klien.example.id")
        out["features_after_tls"] = sorted(smtp.esmtp_features.keys())
        smtp.sendmail(sender, rcpt, message)
        out["result"] = 250
    elif scenario == "send":
        smtp.sendmail(sender, rcpt, message)
        out["result"] = 250
    elif scenario == "bounce":
        smtp.sendmail("<>", rcpt, message)
        out["result"] = 250
    elif scenario == "two-instances":
        smtp.sendmail(sender, rcpt + ["apa.saja@aduan.example.go.id"], message)
        out["result"] = 250
    elif scenario == "unknown-recipient":
        try:
            smtp.sendmail(sender, ["orang.lain@example.id"], message)
            out["result"] = 250
        except smtplib.SMTPRecipientsRefused as e:
            out["result"] = list(e.recipients.values())[0][0]
    elif scenario == "oversize-declared":
        # smtplib declares SIZE= because the server announces it.
        try:
            smtp.sendmail(sender, rcpt, message)
            out["result"] = 250
        except smtplib.SMTPSenderRefused as e:
            out["result"] = e.smtp_code
    elif scenario == "oversize-undeclared":
        smtp.mail(sender)
        smtp.rcpt(rcpt[0])
        code, _ = smtp.data(message)
        out["result"] = code
    else:
        raise SystemExit(f"unknown scenario {scenario}")
finally:
    try:
        smtp.quit()
    except smtplib.SMTPException:
        pass

print(json.dumps(out))
