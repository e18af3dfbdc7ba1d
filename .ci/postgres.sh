# Starts a throwaway PostgreSQL on 127.0.0.1 for the tests and exports
# TRIBUTARY_TEST_POSTGRES_URL; stops it when the calling script exits.
# Sourced by .ci/run; also usable by hand: `source .ci/postgres.sh && start_test_postgres`.

start_test_postgres() {
    local bindir
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bindir" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing PostgreSQL from Debian's packages"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    if [ -z "$bindir" ]; then
        echo "WARNING: no PostgreSQL available; metadata tests run on SQLite only"
        return 0
    fi
    local runas=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        runas=(runuser -u postgres --)
    fi
    PG_TEST_DIR=$(mktemp -d /tmp/tributary-pg.XXXXXX)
    chmod 777 "$PG_TEST_DIR"
    local port=55432
    while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    "${runas[@]}" "$bindir/initdb" -D "$PG_TEST_DIR/data" -U postgres -A trust >/dev/null
    "${runas[@]}" "$bindir/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_TEST_DIR -c fsync=off" start >/dev/null
    PG_TEST_CTL=("${runas[@]}" "$bindir/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate stop)
    trap 'stop_test_postgres' EXIT
    export TRIBUTARY_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL for tests: $TRIBUTARY_TEST_POSTGRES_URL"
}

stop_test_postgres() {
    "${PG_TEST_CTL[@]}" >/dev/null 2>&1 || true
    rm -rf "$PG_TEST_DIR"
}
