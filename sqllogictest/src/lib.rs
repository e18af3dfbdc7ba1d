//! The sqllogictest runner: a Tributary server process on free ports with a
//! fresh data dir, and a `sqllogictest` database adapter speaking the
//! Postgres protocol to it (tokio-postgres, the simple query protocol, as a
//! psql user would). Errors render as `SQLSTATE message`, so files can pin
//! codes: `statement error 42P01 stream "nope" does not exist`. A `COPY ...
//! FROM STDIN` statement takes the lines after it as its data.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use futures::SinkExt;
use sqllogictest::{DBOutput, DefaultColumnType};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A `tributary serve` process, killed when dropped. The one test harness
/// for a real server: the slt runner and the binary's own tests use it.
#[derive(Debug)]
pub struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// `host:port` of its Postgres listener.
    pub pg: String,
    /// `host:port` of its Kafka listener.
    pub kafka: String,
    /// `host:port` of its HTTP listener (web console, API, metrics).
    pub http: String,
}

impl Server {
    /// Starts `binary serve` on `data_dir` with free Postgres and Kafka
    /// ports, and waits until it runs.
    pub fn start(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with_kafka(binary, data_dir, "127.0.0.1:0")
    }

    /// Starts `binary serve` on `data_dir` with its Kafka listener on
    /// `kafka_listen` (a restarted server keeps the address its clients
    /// bootstrap from), and waits until it runs.
    pub fn start_with_kafka(
        binary: &Path,
        data_dir: &Path,
        kafka_listen: &str,
    ) -> anyhow::Result<Self> {
        // After a SIGKILL, a client still reconnecting to the old port can
        // hold it for a moment (on loopback, a connection to a port no one
        // listens on may connect to itself): a failed bind is tried again.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match Self::start_with_args(binary, data_dir, &["--kafka-listen", kafka_listen]) {
                Err(e)
                    if format!("{e:#}").contains("Address already in use")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                }
                started => return started,
            }
        }
    }

    /// Starts `binary serve` on `data_dir` with a free Postgres port, a
    /// free Kafka port unless `args` names one, and `args` (more flags of
    /// `serve`), and waits until it runs.
    pub fn start_with_args(binary: &Path, data_dir: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let kafka_default: &[&str] = if args.contains(&"--kafka-listen") {
            &[]
        } else {
            &["--kafka-listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--pg-listen", "127.0.0.1:0"])
            .args(["--http-listen", "127.0.0.1:0"])
            .args(kafka_default)
            .args(args)
            .env("TRIBUTARY_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
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
            kafka: String::new(),
            http: String::new(),
        };
        let seen = server.wait_for_line("tributary is running")?;
        server.pg = seen
            .iter()
            .find_map(|l| l.split("listening pg=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .context("the server did not report its Postgres address")?
            .to_string();
        server.kafka = seen
            .iter()
            .find_map(|l| l.split("listening kafka=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .context("the server did not report its Kafka address")?
            .to_string();
        server.http = seen
            .iter()
            .find_map(|l| l.split("listening http=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .context("the server did not report its HTTP address")?
            .to_string();
        Ok(server)
    }

    /// Waits for a log line containing `needle`; returns the lines seen.
    pub fn wait_for_line(&mut self, needle: &str) -> anyhow::Result<Vec<String>> {
        let mut seen = Vec::new();
        loop {
            let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) else {
                anyhow::bail!("no line containing {needle:?}; saw:\n{}", seen.join("\n"));
            };
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return Ok(seen);
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `tributary` binary cargo built next to the test executable.
pub fn tributary_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable has no target dir")?;
    let binary = dir.join("tributary");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        binary.display()
    );
    Ok(binary)
}

/// The comment line in a `.slt` file at which the runner restarts the
/// server (killed with SIGKILL, started again on the same data dir) before
/// playing the rest of the file.
pub const RESTART_DIRECTIVE: &str = "# tributary: restart";

/// Splits a script at its restart directives. Each part keeps its line
/// numbers: the lines before it are blank.
pub fn split_at_restarts(script: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    for (number, line) in script.lines().enumerate() {
        if line.trim_end() == RESTART_DIRECTIVE {
            parts.push("\n".repeat(number + 1));
        } else if let Some(current) = parts.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_their_line_numbers() {
        let parts = split_at_restarts("a\n# tributary: restart\nb\nc\n");
        assert_eq!(parts, ["a\n", "\n\nb\nc\n"]);
        assert_eq!(split_at_restarts("x\n"), ["x\n"]);
    }
}

/// A `COPY ... FROM STDIN` record with its data on the following lines:
/// the statement (first line, without `;`) and the data.
///
/// ```text
/// statement ok
/// COPY t FROM STDIN (FORMAT csv)
/// 1,one
/// 2,two
/// ```
pub fn copy_with_data(sql: &str) -> Option<(&str, String)> {
    let (first, rest) = sql.split_once('\n')?;
    let upper = first.to_ascii_uppercase();
    if !upper.trim_start().starts_with("COPY") || !upper.contains("FROM STDIN") {
        return None;
    }
    Some((first.trim_end().trim_end_matches(';'), format!("{rest}\n")))
}

/// An error as `SQLSTATE message`.
#[derive(Debug)]
pub struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

impl From<tokio_postgres::Error> for SqlError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Self(format!("{} {}", db.code().code(), db.message())),
            None => Self(e.to_string()),
        }
    }
}

/// One connection to the server under test.
#[derive(Debug)]
pub struct Connection {
    client: Client,
}

impl Connection {
    /// Connects to `host:port`.
    pub async fn connect(pg: &str) -> Result<Self, SqlError> {
        let (host, port) = pg
            .rsplit_once(':')
            .ok_or_else(|| SqlError(format!("bad address {pg}")))?;
        let config = format!("host={host} port={port} user=tributary dbname=tributary");
        let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { client })
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Connection {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        if let Some((statement, data)) = copy_with_data(sql) {
            let sink = self.client.copy_in(statement).await?;
            futures::pin_mut!(sink);
            sink.send(bytes::Bytes::from(data)).await?;
            return Ok(DBOutput::StatementComplete(sink.finish().await?));
        }
        let messages = self.client.simple_query(sql).await?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut affected = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(description) => {
                    columns = Some(description.len())
                }
                SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(v) => v.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => affected = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(affected),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "tributary"
    }
}
