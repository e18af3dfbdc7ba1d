//! `tributary sql` driven through its standard input against a real
//! server: statements over several lines, tables, `\x`, `\d`, errors.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{Server, start};

fn run_script(server: &Server, script: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "sql",
            &format!("postgres://tributary@{}/tributary", server.pg),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("Time: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn repl_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let script = "\
CREATE STREAM s (id BIGINT,
                 name TEXT);
INSERT INTO s VALUES (1, 'ann'), (2, 'bob');
SELECT id, name FROM s
  ORDER BY id;
\\x
SELECT id, name FROM s WHERE id = 2;
\\x
\\d s
CREATE MATERIALIZED VIEW named AS SELECT name FROM s;
\\d
SELECT nope FROM s;
SELECT count(*) AS n FROM s;
\\q
SELECT 'not reached';
";
    let expected = "\
OK
OK 2
 id | name 
----+------
 1  | ann
 2  | bob
(2 rows)
Expanded display is on.
-[ RECORD 1 ]----
id   | 2
name | bob
(1 row)
Expanded display is off.
   column   |   type    | nullable |   note   
------------+-----------+----------+----------
 _partition | INTEGER   | f        | metadata
 _offset    | BIGINT    | f        | metadata
 _timestamp | TIMESTAMP | f        | metadata
 _key       | BYTEA     | t        | metadata
 id         | BIGINT    | t        |
 name       | TEXT      | t        |
(6 rows)
OK
 name  |       kind        
-------+-------------------
 named | materialized view
 s     | stream
(2 rows)
ERROR:  No field named nope. Did you mean 's.name'?
Valid fields are s._partition, s._offset, s._timestamp, s._key, s.id, s.name.
SQLSTATE: 42703
 n 
---
 2
(1 row)
";
    assert_eq!(run_script(&server, script), expected);
}
