# Makes sure Debian's Chromium is there for the browser test of the web
# console (frontend/tests/it/browser.rs); sourced by .ci/run. Without it
# (not root, no apt-get) the test says loudly that it was skipped.

ensure_chromium() {
    if command -v chromium >/dev/null || [ -n "${TRIBUTARY_CHROMIUM:-}" ]; then
        return 0
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Chromium from Debian's packages"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    command -v chromium >/dev/null || echo "WARNING: no Chromium available; the browser test will be skipped"
}
