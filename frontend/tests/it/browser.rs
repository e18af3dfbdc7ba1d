//! The web console in a real browser: headless Chromium (Debian's
//! `chromium`), driven over the DevTools protocol, opens the console of a
//! real server, runs statements with Ctrl-Enter, sees the rows and an
//! error with its SQLSTATE, tails a stream live while a row is inserted
//! over pgwire, and saves screenshots. Without Chromium the test says so
//! loudly and passes (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{connect, start};

/// Where Chromium is: `$TRIBUTARY_CHROMIUM`, or Debian's `chromium`.
fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("TRIBUTARY_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Where screenshots go: `$TRIBUTARY_SCREENSHOTS`, or a folder in the
/// target directory.
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var("TRIBUTARY_SCREENSHOTS").map_or_else(
        |_| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless Chromium process, killed when dropped.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    port: u16,
}

impl Browser {
    fn launch(binary: &Path) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Chromium writes the port it bound into the profile.
        let active = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&active)
                .ok()
                .and_then(|text| text.lines().next().and_then(|l| l.parse().ok()))
            {
                break port;
            }
            assert!(Instant::now() < deadline, "Chromium did not start");
            std::thread::sleep(Duration::from_millis(100));
        };
        Self {
            child,
            _profile: profile,
            port,
        }
    }

    /// The first page's DevTools connection.
    async fn page(&self) -> Page {
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{}/json/list", self.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("no page target")
            .to_string();
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Page { socket, next_id: 1 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page, driven by DevTools protocol commands.
struct Page {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Page {
    /// Sends a command and waits for its answer (events are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer within 30 s"))
                .expect("DevTools connection closed")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression (promises awaited).
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy; its value.
    async fn wait_for(&mut self, expression: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.eval(expression).await;
            if !(value.is_null() || value == false || value == "") {
                return value;
            }
            assert!(Instant::now() < deadline, "never true: {expression}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens `url` and waits until the console has loaded its catalog.
    async fn open_console(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": "about:blank" }))
            .await;
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for(
            "document.readyState === 'complete' && \
             document.getElementById('catalog-body')?.textContent.includes('Streams')",
        )
        .await;
    }

    /// Puts `sql` in the editor as typed text and presses Ctrl-Enter.
    async fn run_sql(&mut self, sql: &str) {
        self.eval("(() => { const e = document.getElementById('editor'); e.value = ''; e.focus(); return true; })()")
            .await;
        self.call("Input.insertText", json!({ "text": sql })).await;
        self.press_ctrl_enter().await;
    }

    /// Ctrl-Enter, as the keyboard sends it, to whatever has the focus.
    async fn press_ctrl_enter(&mut self) {
        for kind in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({
                    "type": kind, "modifiers": 2, "key": "Enter", "code": "Enter",
                    "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
                }),
            )
            .await;
        }
    }

    async fn screenshot(&mut self, name: &str) -> PathBuf {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_sql_shows_errors_and_tails_live_in_chromium() {
    let Some(binary) = chromium() else {
        eprintln!(
            "\n*** SKIPPED the browser test: no Chromium (install Debian's `chromium`, \
             or set TRIBUTARY_CHROMIUM) ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let browser = Browser::launch(&binary);
    let mut page = browser.page().await;
    page.open_console(&format!("http://{}/", server.http)).await;

    // Statements typed into the editor and run with Ctrl-Enter: the rows
    // appear in a table with their count.
    page.run_sql(
        "CREATE STREAM web_orders (id BIGINT, item TEXT, price DOUBLE PRECISION);\n\
         INSERT INTO web_orders VALUES (1, 'tea', 3.5), (2, 'jam', 4.25);\n\
         CREATE MATERIALIZED VIEW web_totals AS SELECT item, count(*) AS orders FROM web_orders GROUP BY item;\n\
         SELECT id, item, price FROM web_orders ORDER BY id;",
    )
    .await;
    let rows = page
        .wait_for(
            "(() => { const t = [...document.querySelectorAll('#results .result-table')].pop();
               return t && [...t.querySelectorAll('tbody tr')].map(r =>
                 [...r.querySelectorAll('td')].map(td => td.textContent).join('|')); })()",
        )
        .await;
    assert_eq!(rows, json!(["1|tea|3.5", "2|jam|4.25"]));
    let count = page
        .eval("[...document.querySelectorAll('#results .row-count')].pop().textContent")
        .await;
    assert_eq!(count, "2 rows");
    // A click on a column's header sorts by it; a second click reverses.
    let sorted = page
        .eval(
            "(() => {
               const header = () => [...document.querySelectorAll('#results .result-table')].pop()
                 .querySelector('th');
               header().click();
               header().click();
               const t = [...document.querySelectorAll('#results .result-table')].pop();
               return [...t.querySelectorAll('tbody tr td:first-child')].map(td => td.textContent);
             })()",
        )
        .await;
    assert_eq!(sorted, json!(["2", "1"]));
    // The catalog sidebar learned of the new stream and view.
    page.wait_for("document.querySelector('#catalog-body [data-name=\"web_orders\"]') !== null")
        .await;
    page.wait_for("document.querySelector('#catalog-body [data-name=\"web_totals\"]') !== null")
        .await;
    page.screenshot("console-results").await;

    // A bad statement: the error with its SQLSTATE.
    page.run_sql("SELECT * FROM no_such_stream").await;
    let error = page
        .wait_for("document.querySelector('#results .error')?.textContent")
        .await;
    let error = error.as_str().unwrap();
    assert!(error.contains("42P01"), "{error}");
    assert!(error.contains("no_such_stream"), "{error}");
    page.screenshot("console-error").await;

    // A live tail of the stream; a row inserted over pgwire appears.
    page.eval(
        "document.getElementById('tail-input').value = 'web_orders';
         document.getElementById('tail-start').click(); true",
    )
    .await;
    page.wait_for("document.getElementById('tail-status').textContent.startsWith('live')")
        .await;
    let pg = connect(&server).await;
    pg.batch_execute("INSERT INTO web_orders VALUES (3, 'kettle', 30)")
        .await
        .unwrap();
    let tailed = page
        .wait_for(
            "(() => { const t = document.getElementById('tail-table');
               return t && t.textContent.includes('kettle') && t.textContent; })()",
        )
        .await;
    assert!(tailed.as_str().unwrap().contains("30"), "{tailed}");
    page.screenshot("console-live-tail").await;

    // The jobs page lists the view's job.
    page.eval("document.getElementById('tab-jobs').click(); true")
        .await;
    page.wait_for("document.getElementById('jobs-table')?.textContent.includes('web_totals')")
        .await;
    let shot = page.screenshot("console-jobs").await;
    eprintln!("screenshots in {}", shot.parent().unwrap().display());
}

/// README's screenshots, of a server started with `--demo` after it has run
/// half a minute. By hand:
/// `TRIBUTARY_SCREENSHOTS=$PWD/docs/screenshots cargo test --workspace -- --ignored readme_screenshots`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes README's screenshots; run by hand"]
async fn readme_screenshots() {
    let binary = chromium().expect("Chromium is needed for the screenshots");
    let dir = tempfile::tempdir().unwrap();
    let server = crate::support::Server::start_with_args(
        Path::new(env!("CARGO_BIN_EXE_tributary")),
        &dir.path().join("data"),
        &["--demo"],
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let browser = Browser::launch(&binary);
    let mut page = browser.page().await;
    let base = format!("http://{}/", server.http);

    let queries = "SELECT channel, bids, round(avg_price) AS avg_price, top_price\n\
                   FROM bids_per_channel ORDER BY bids DESC LIMIT 5;\n\
                   SELECT window_start, window_end, bids, top_price\n\
                   FROM top_bid_10s ORDER BY window_start DESC LIMIT 5;";
    let encoded = page
        .eval(&format!("encodeURIComponent({})", json!(queries)))
        .await;
    page.open_console(&format!("{base}#sql={}", encoded.as_str().unwrap()))
        .await;
    // A linked statement waits in the editor for Ctrl-Enter.
    page.press_ctrl_enter().await;
    page.wait_for("document.querySelectorAll('#results .result-table').length === 2")
        .await;
    page.screenshot("console-results").await;

    page.open_console(&format!("{base}#tail=bids_per_channel"))
        .await;
    page.wait_for("document.querySelectorAll('#tail-table tbody tr').length > 20")
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    page.screenshot("console-live-tail").await;

    page.open_console(&format!("{base}#jobs")).await;
    page.wait_for("document.getElementById('jobs-table') !== null")
        .await;
    tokio::time::sleep(Duration::from_secs(40)).await;
    let shot = page.screenshot("console-jobs").await;
    eprintln!("screenshots in {}", shot.parent().unwrap().display());
}
