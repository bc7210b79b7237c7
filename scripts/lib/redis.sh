# Redis for ./scripts/run and ./scripts/test: use the one already running, or
# install Debian's redis-server when it is missing and start a private one.
# Sourced, not executed.

# Installs a Debian package when its command is missing.
#   need_package COMMAND PACKAGE
need_package() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "aduan: installing Debian package $2 (for $1)" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "aduan: $2 is missing and this user cannot install it; run: apt-get install $2" >&2; return 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}

# True when a Redis answers PING at host $1 port $2.
redis_answers() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h "$1" -p "$2" ping 2>/dev/null)" = "PONG" ]
  else
    # Without redis-cli, speak RESP over bash's /dev/tcp.
    exec 9<>"/dev/tcp/$1/$2" 2>/dev/null || return 1
    printf 'PING\r\n' >&9
    local reply
    read -r -t 2 reply <&9 || true
    exec 9>&-
    [ "${reply%$'\r'}" = "+PONG" ]
  fi
}

# Starts a private redis-server on 127.0.0.1:$1 with data in $2 (daemonized).
start_private_redis() {
  local port="$1" dir="$2"
  need_package redis-server redis-server
  mkdir -p "$dir"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --save "" --appendonly yes --appendfsync everysec >/dev/null
  local i
  for i in $(seq 1 50); do
    redis_answers 127.0.0.1 "$port" && return 0
    sleep 0.1
  done
  echo "aduan: redis-server did not start on port $port (see $dir/redis.log)" >&2
  return 1
}

# Stops a private redis-server started by start_private_redis.
stop_private_redis() {
  local dir="$1"
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Fails when a test left a process running: a redis-server that was not
# running before ($1, the sorted pids then) and is not one of the suite's own
# (pid files under $2), or a test build of the gateway still running
# (./scripts/run runs the release build).
leftover_processes() {
  local before="$1" work="$2" pid own="" left=""
  for pid in "$work"/redis/redis.pid "$work"/cluster/*/redis.pid; do
    [ -f "$pid" ] && own="$own $(cat "$pid")"
  done
  sleep 1
  for pid in $(pgrep -x redis-server || true); do
    case " $own " in *" $pid "*) continue ;; esac
    printf '%s\n' "$before" | grep -qx "$pid" && continue
    left="$left redis-server:$pid"
  done
  for pid in $(pgrep -f "^$PWD/target/debug/aduan( |$)" || true); do
    left="$left aduan:$pid"
  done
  if [ -n "$left" ]; then
    echo "aduan: the tests left processes running:$left" >&2
    return 1
  fi
}
