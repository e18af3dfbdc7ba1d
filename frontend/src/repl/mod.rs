//! `tributary sql`: an interactive SQL shell over the Postgres protocol, so
//! it works against any Tributary server. Line editing and history
//! (rustyline), statements ended by `;` over several lines, aligned or
//! expanded (`\x`) tables with row counts and timing (`\timing`), `\d`,
//! `\d NAME`, `\q`, errors with their SQLSTATE, and `SUBSCRIBE` followed
//! live until Ctrl-C.

mod render;
mod subscribe;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use render::{Table, render};

/// What `\d` runs: the streams and materialized views, as psql's `\d`
/// lists tables and views.
const LIST_RELATIONS: &str = "SELECT table_name AS name, \
     CASE table_type WHEN 'VIEW' THEN 'materialized view' ELSE 'stream' END AS kind \
     FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name";

/// Arguments of `tributary sql`.
#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// The server to connect to.
    #[arg(default_value = "postgres://localhost:5433")]
    url: String,
}

/// Display settings toggled by backslash commands.
#[derive(Debug)]
struct Settings {
    timing: bool,
    expanded: bool,
}

pub(crate) async fn run(args: SqlArgs) -> anyhow::Result<()> {
    let mut config: tokio_postgres::Config = args.url.parse().context("parsing the server URL")?;
    if config.get_user().is_none() {
        config.user(std::env::var("USER").unwrap_or_else(|_| "tributary".into()));
    }
    let (client, connection) = config
        .connect(NoTls)
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection error: {e}");
        }
    });
    let mut settings = Settings {
        timing: true,
        expanded: false,
    };
    if std::io::stdin().is_terminal() {
        interactive(&client, &mut settings).await
    } else {
        let stdin = std::io::stdin();
        let mut buffer = String::new();
        for line in stdin.lock().lines() {
            if !handle_line(&client, &mut settings, &mut buffer, &line?).await? {
                break;
            }
        }
        if !buffer.trim().is_empty() {
            execute(&client, &settings, &buffer).await;
        }
        Ok(())
    }
}

async fn interactive(client: &Client, settings: &mut Settings) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!("tributary sql — end statements with ;  \\d lists streams and views, \\q quits");
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "tributary=> "
        } else {
            "tributary-> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if !handle_line(client, settings, &mut buffer, &line).await? {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".tributary_history"))
}

/// Handles one input line; returns false to quit.
async fn handle_line(
    client: &Client,
    settings: &mut Settings,
    buffer: &mut String,
    line: &str,
) -> anyhow::Result<bool> {
    let trimmed = line.trim();
    if buffer.is_empty() && trimmed.starts_with('\\') {
        return Ok(command(client, settings, trimmed).await);
    }
    buffer.push_str(line);
    buffer.push('\n');
    if trimmed.ends_with(';') {
        let sql = std::mem::take(buffer);
        execute(client, settings, &sql).await;
    }
    Ok(true)
}

/// Runs a backslash command; returns false to quit.
async fn command(client: &Client, settings: &mut Settings, line: &str) -> bool {
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("\\q"), _) => return false,
        (Some("\\timing"), _) => {
            settings.timing = !settings.timing;
            println!("Timing is {}.", if settings.timing { "on" } else { "off" });
        }
        (Some("\\x"), _) => {
            settings.expanded = !settings.expanded;
            println!(
                "Expanded display is {}.",
                if settings.expanded { "on" } else { "off" }
            );
        }
        (Some("\\d"), None) => execute(client, settings, LIST_RELATIONS).await,
        (Some("\\d"), Some(name)) => execute(client, settings, &format!("DESCRIBE {name}")).await,
        (Some("\\?"), _) => println!(
            "\\d [NAME]  list streams and views, or describe one\n\\x         toggle expanded display\n\\timing    toggle timing\n\\q         quit"
        ),
        (Some(other), _) => println!("invalid command {other}; try \\?"),
        (None, _) => {}
    }
    true
}

/// Runs SQL and prints each statement's result, then the time taken; a
/// subscription is followed live instead.
async fn execute(client: &Client, settings: &Settings, sql: &str) {
    if subscribe::is_subscription(sql) {
        subscribe::follow(client, sql).await;
        return;
    }
    let start = Instant::now();
    let result = client.simple_query(sql).await;
    let elapsed = start.elapsed();
    let mut out = std::io::stdout().lock();
    match result {
        Ok(messages) => {
            let mut table = Table::default();
            for message in messages {
                match message {
                    SimpleQueryMessage::RowDescription(columns) => {
                        table = Table::default();
                        table.columns = columns.iter().map(|c| c.name().to_string()).collect();
                    }
                    SimpleQueryMessage::Row(row) => {
                        if table.columns.is_empty() {
                            table.columns =
                                row.columns().iter().map(|c| c.name().to_string()).collect();
                        }
                        table.rows.push(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_string))
                                .collect(),
                        );
                    }
                    SimpleQueryMessage::CommandComplete(count) => {
                        if table.columns.is_empty() {
                            let _ = writeln!(
                                out,
                                "OK{}",
                                if count > 0 {
                                    format!(" {count}")
                                } else {
                                    String::new()
                                }
                            );
                        } else {
                            let _ = write!(out, "{}", render(&table, settings.expanded));
                        }
                        table = Table::default();
                    }
                    _ => {}
                }
            }
        }
        Err(e) => match e.as_db_error() {
            Some(db) => {
                let _ = writeln!(
                    out,
                    "ERROR:  {}\nSQLSTATE: {}",
                    db.message(),
                    db.code().code()
                );
            }
            None => {
                let _ = writeln!(out, "ERROR:  {e}");
            }
        },
    }
    if settings.timing {
        let _ = writeln!(out, "Time: {:.3} ms", elapsed.as_secs_f64() * 1000.0);
    }
}
