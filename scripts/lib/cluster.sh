# A private Redis Cluster on loopback for ./scripts/test and ./scripts/bench:
# six redis-server processes, three masters and three replicas, made into
# a cluster by `redis-cli --cluster create`. Sourced, not executed; needs
# scripts/lib/redis.sh sourced first.

# A base port whose six ports and their cluster bus ports (+10000) are free.
cluster_base_port() {
  python3 - <<'EOF'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(200):
    base = random.randrange(21000, 29000)
    if all(free(p) and free(p + 10000) for p in range(base, base + 6)):
        print(base)
        break
EOF
}

# Starts the cluster with data under $1 (one folder a node) on six ports from
# $2, with failover after ${CLUSTER_NODE_TIMEOUT_MS:-1000} ms of silence,
# and the append-only file on unless CLUSTER_APPENDONLY=no.
# Exports ADUAN_CLUSTER_NODES (the six URLs, comma-separated) and
# ADUAN_CLUSTER_DIR (node N's pid file is $ADUAN_CLUSTER_DIR/PORT/redis.pid).
start_private_cluster() {
  local dir="$1" base="$2" port i
  need_package redis-server redis-server
  need_package redis-cli redis-tools
  local timeout="${CLUSTER_NODE_TIMEOUT_MS:-1000}"
  local nodes=() urls=()
  mkdir -p "$dir"
  echo "$timeout" >"$dir/node-timeout"
  echo "${CLUSTER_APPENDONLY:-yes}" >"$dir/appendonly"
  for i in 0 1 2 3 4 5; do
    port=$((base + i))
    start_cluster_node "$dir" "$port"
    nodes+=("127.0.0.1:$port")
    urls+=("redis://127.0.0.1:$port")
  done
  for i in 0 1 2 3 4 5; do
    port=$((base + i))
    local n
    for n in $(seq 1 50); do
      redis_answers 127.0.0.1 "$port" && break
      sleep 0.1
    done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
    echo "aduan: redis-cli --cluster create failed (see $dir/create.log)" >&2
    return 1
  }
  # Ready when every node sees every slot served and three replicas in sync.
  for n in $(seq 1 100); do
    local ok=0
    for i in 0 1 2 3 4 5; do
      redis-cli -p $((base + i)) cluster info 2>/dev/null | grep -q 'cluster_state:ok' && ok=$((ok + 1))
    done
    local synced
    synced=$(for i in 0 1 2 3 4 5; do redis-cli -p $((base + i)) info replication 2>/dev/null; done | grep -c 'master_link_status:up' || true)
    if [ "$ok" = 6 ] && [ "$synced" = 3 ]; then
      ADUAN_CLUSTER_NODES="$(IFS=,; echo "${urls[*]}")"
      ADUAN_CLUSTER_DIR="$dir"
      export ADUAN_CLUSTER_NODES ADUAN_CLUSTER_DIR
      return 0
    fi
    sleep 0.2
  done
  echo "aduan: the private Redis Cluster did not become ready (see $dir/*/redis.log)" >&2
  return 1
}

# Starts (or starts again, keeping its cluster configuration) the node on
# port $2 of the cluster under $1.
start_cluster_node() {
  local dir="$1" port="$2"
  mkdir -p "$dir/$port"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" \
    --dir "$dir/$port" --pidfile "$dir/$port/redis.pid" --logfile "$dir/$port/redis.log" \
    --cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
    --cluster-node-timeout "$(cat "$dir/node-timeout")" --cluster-replica-validity-factor 0 \
    --save "" --appendonly "$(cat "$dir/appendonly")" --appendfsync everysec >/dev/null
}

# Stops every node of the cluster under $1.
stop_private_cluster() {
  local dir="$1" pid
  for pid in "$dir"/*/redis.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
}
