//! A real `tributary serve` process for tests: started on free ports with a
//! fresh data dir, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running server.
pub(crate) struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The Postgres address.
    pub(crate) pg: String,
}

impl Server {
    /// Starts a server on `data_dir` (kept by the caller, so restarts see
    /// the same data).
    pub(crate) fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--pg-listen", "127.0.0.1:0"])
            .env("TRIBUTARY_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Self {
            child,
            lines,
            pg: String::new(),
        };
        let seen = server.wait_for_line("tributary is running");
        let pg_line = seen
            .iter()
            .find(|l| l.contains("listening pg="))
            .unwrap_or_else(|| panic!("no pg address in {seen:?}"));
        server.pg = pg_line
            .split("listening pg=")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        server
    }

    /// Waits for a log line containing `needle`; returns the lines seen.
    pub(crate) fn wait_for_line(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    let found = line.contains(needle);
                    seen.push(line);
                    if found {
                        return seen;
                    }
                }
                Err(_) => panic!("no line containing {needle:?}; saw:\n{}", seen.join("\n")),
            }
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit.
    pub(crate) fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// A connection string for tokio-postgres.
    pub(crate) fn pg_config(&self) -> String {
        let (host, port) = self.pg.rsplit_once(':').unwrap();
        format!("host={host} port={port} user=tributary dbname=tributary")
    }

    /// Connects with tokio-postgres.
    pub(crate) async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.pg_config(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
