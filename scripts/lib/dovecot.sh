# A private Dovecot IMAP server for the IMAP poller's tests: IMAPS on a
# loopback port, one test user, a maildir in a temporary folder.
# Sourced, not executed (needs need_package from scripts/lib/redis.sh).
#
#   start_private_dovecot DIR     starts it and exports
#     DOVECOT_IMAPS_PORT   the IMAPS port on 127.0.0.1
#     DOVECOT_USER         the test user's login
#     DOVECOT_PASSWORD     its password
#     DOVECOT_CA           the server's self-signed certificate (PEM), to trust
#   stop_private_dovecot DIR      stops it

start_private_dovecot() {
  local dir="$1"
  need_package dovecot dovecot-imapd || return 1
  mkdir -p "$dir/run" "$dir/home"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || return 1
  local user="warga" password="sandi-uji-imap"
  # Mail is owned by an unprivileged account: Dovecot refuses root as a mail user.
  local mail_uid mail_gid
  mail_uid=$(id -u dovecot 2>/dev/null || id -u)
  mail_gid=$(id -g dovecot 2>/dev/null || id -g)
  printf '%s:{PLAIN}%s\n' "$user" "$password" >"$dir/users"
  mkdir -p "$dir/home/$user/Maildir"
  chown -R "$mail_uid:$mail_gid" "$dir/home" 2>/dev/null || true
  cat >"$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
instance_name = aduan-test-$port
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$dir/cert.pem
ssl_key = <$dir/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$dir/home/%u
}
mail_location = maildir:~/Maildir
# Tests wait for IDLE notifications; check the maildir every second.
mailbox_idle_check_interval = 1 secs
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $port
    ssl = yes
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
CONF
  # The daemon must not hold the caller's stdout/stderr open (callers read them to the end).
  dovecot -c "$dir/dovecot.conf" </dev/null >"$dir/start.log" 2>&1 || {
    cat "$dir/start.log" "$dir/dovecot.log" >&2 2>/dev/null
    return 1
  }
  local i
  for i in $(seq 1 50); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; then
      export DOVECOT_IMAPS_PORT="$port" DOVECOT_USER="$user" DOVECOT_PASSWORD="$password" DOVECOT_CA="$dir/cert.pem"
      return 0
    fi
    sleep 0.1
  done
  echo "aduan: dovecot did not start; see $dir/dovecot.log" >&2
  return 1
}

stop_private_dovecot() {
  local dir="$1"
  [ -f "$dir/dovecot.conf" ] || return 0
  dovecot -c "$dir/dovecot.conf" stop 2>/dev/null || true
}
