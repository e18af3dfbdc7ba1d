//! Plays every `sqllogictest/slt/*.slt` file against a real server started
//! for the run (`cargo test --workspace` builds it). Set
//! `TRIBUTARY_SLT_FILTER=name` to run only files whose name contains it.

use std::path::PathBuf;

use tributary_sqllogictest::{Connection, Server, tributary_binary};

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
    let data = tempfile::tempdir()?;
    let server = Server::start(&tributary_binary()?, &data.path().join("data"))?;
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let pg = server.pg.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let pg = pg.clone();
            async move { Connection::connect(&pg).await }
        });
        match runner.run_file_async(file).await {
            Ok(()) => {
                println!("slt {} ... ok", file.display());
                passed += 1;
            }
            Err(e) => {
                println!("slt {} ... FAILED\n{e}", file.display());
                failed += 1;
            }
        }
    }
    println!("slt: {passed} passed, {failed} failed");
    anyhow::ensure!(failed == 0, "{failed} sqllogictest file(s) failed");
    Ok(())
}
