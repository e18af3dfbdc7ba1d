//! Plays every `sqllogictest/slt/*.slt` file against a real server started
//! for the run (`cargo test --workspace` builds it). Set
//! `TRIBUTARY_SLT_FILTER=name` to run only files whose name contains it.
//! A line `# tributary: restart` in a file kills the server and starts it
//! again on the same data dir before the rest of the file.

use std::path::PathBuf;

use tributary_sqllogictest::{Connection, Server, split_at_restarts, tributary_binary};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let filter = std::env::var("TRIBUTARY_SLT_FILTER").unwrap_or_default();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    files.sort();
    let binary = tributary_binary()?;
    let data = tempfile::tempdir()?;
    let data_dir = data.path().join("data");
    // Checkpoints every 200 ms: a restart in a file then restores a
    // checkpoint and replays after it, rather than replaying from the start.
    let args = ["--checkpoint-interval-ms", "200"];
    let mut server = Server::start_with_args(&binary, &data_dir, &args)?;
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let name = file.display().to_string();
        let script = std::fs::read_to_string(file)?;
        let mut outcome = Ok(());
        for (i, part) in split_at_restarts(&script).iter().enumerate() {
            if i > 0 {
                // Killed, not stopped: what was acknowledged must be there.
                drop(server);
                server = Server::start_with_args(&binary, &data_dir, &args)?;
            }
            let pg = server.pg.clone();
            let mut runner = sqllogictest::Runner::new(move || {
                let pg = pg.clone();
                async move { Connection::connect(&pg).await }
            });
            outcome = runner.run_script_with_name_async(part, name.as_str()).await;
            if outcome.is_err() {
                break;
            }
        }
        match outcome {
            Ok(()) => {
                println!("slt {name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("slt {name} ... FAILED\n{e}");
                failed += 1;
            }
        }
    }
    println!("slt: {passed} passed, {failed} failed");
    anyhow::ensure!(failed == 0, "{failed} sqllogictest file(s) failed");
    Ok(())
}
