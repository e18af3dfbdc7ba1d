//! A `SUBSCRIBE` in the REPL: its rows printed as they arrive, one line
//! each (`op | column | ...`), until Ctrl-C cancels it on the server.

use std::io::Write;

use futures::{StreamExt, pin_mut};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Whether `sql` is a subscription, which the REPL follows live.
pub(super) fn is_subscription(sql: &str) -> bool {
    let words: String = sql
        .trim_start()
        .chars()
        .filter(|c| !c.is_whitespace())
        .take(10)
        .collect::<String>()
        .to_ascii_uppercase();
    words.starts_with("SUBSCRIBE")
}

/// Prints the subscription's rows as they come until Ctrl-C or an error.
pub(super) async fn follow(client: &Client, sql: &str) {
    let mut out = std::io::stdout();
    let rows = match client.simple_query_raw(sql).await {
        Ok(rows) => rows,
        Err(e) => {
            let _ = writeln!(out, "ERROR:  {}", describe(&e));
            return;
        }
    };
    pin_mut!(rows);
    // One listener for the whole subscription, listening from before the
    // prompt: a Ctrl-C that comes while a row is being printed is not lost.
    let interrupted = tokio::signal::ctrl_c();
    pin_mut!(interrupted);
    let mut stop = futures::poll!(interrupted.as_mut()).is_ready();
    let _ = writeln!(out, "(following; Ctrl-C to stop)");
    let mut header = false;
    let mut count = 0u64;
    while !stop {
        tokio::select! {
            _ = interrupted.as_mut() => stop = true,
            message = rows.next() => match message {
                Some(Ok(SimpleQueryMessage::Row(row))) => {
                    if !header {
                        let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
                        let _ = writeln!(out, "{}", names.join(" | "));
                        header = true;
                    }
                    let values: Vec<&str> =
                        (0..row.len()).map(|i| row.get(i).unwrap_or("NULL")).collect();
                    let _ = writeln!(out, "{}", values.join(" | "));
                    let _ = out.flush();
                    count += 1;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = writeln!(out, "ERROR:  {}", describe(&e));
                    return;
                }
                None => return,
            }
        }
    }
    let _ = client.cancel_token().cancel_query(NoTls).await;
    // The cancelled statement ends the stream with 57014.
    while rows.next().await.is_some() {}
    let _ = writeln!(out, "({count} rows; stopped)");
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}\nSQLSTATE: {}", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_recognized() {
        assert!(is_subscription("  subscribe to v;"));
        assert!(is_subscription("SUBSCRIBE (SELECT 1)"));
        assert!(!is_subscription("SELECT * FROM subscribers"));
    }
}
