//! `tributary serve` as a real process: it starts on a fresh data dir, logs
//! what it opened, and stops cleanly on SIGTERM and SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn start(data_dir: &std::path::Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .env("TRIBUTARY_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
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

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn serve_starts_logs_and_stops_cleanly_on_signals() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    for sig in ["-TERM", "-INT"] {
        let (mut child, lines) = start(&data_dir);
        let seen = wait_for_line(&lines, "tributary is running");
        assert!(
            seen.iter().any(|l| l.contains("metadata store opened")),
            "{seen:?}"
        );
        assert!(seen.iter().any(|l| l.contains("log opened")), "{seen:?}");
        signal(&child, sig);
        wait_for_line(&lines, "tributary stopped");
        let status = child.wait().unwrap();
        assert!(status.success(), "clean exit after {sig}: {status}");
    }
    assert!(data_dir.join("metadata.db").exists());
    assert!(data_dir.join("objects").is_dir());
}
