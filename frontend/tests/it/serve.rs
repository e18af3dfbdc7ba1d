//! `tributary serve` as a real process: it starts on a fresh data dir, logs
//! what it opened, and stops cleanly on SIGTERM and SIGINT.

use std::process::Command;

use crate::support::start;

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn serve_starts_logs_and_stops_cleanly_on_signals() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    for sig in ["-TERM", "-INT"] {
        let mut server = start(&data_dir);
        assert!(server.pg.starts_with("127.0.0.1:"), "{}", server.pg);
        signal(server.pid(), sig);
        let seen = server.wait_for_line("tributary stopped").unwrap();
        assert!(seen.iter().any(|l| l.contains("log shut down")), "{seen:?}");
        let status = server.wait().unwrap();
        assert!(status.success(), "clean exit after {sig}: {status}");
    }
    assert!(data_dir.join("metadata.db").exists());
    assert!(data_dir.join("objects").is_dir());
}
