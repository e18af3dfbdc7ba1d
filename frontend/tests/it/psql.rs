//! psql, the real Postgres shell, scripted end to end against a server
//! process: create a stream, list it with `\dt`, describe it with `\d` and
//! `\d+`, insert, COPY inline csv data, select, `\x`, an error on a bad
//! column, a materialized view listed by `\dv`; the output compared with
//! the expected text.

use std::process::Command;

use crate::support::{psql_args, start};

#[test]
fn psql_script() {
    if Command::new("psql").arg("--version").output().is_err() {
        eprintln!("SKIPPED psql_script: psql is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        "\
CREATE STREAM orders (order_id BIGINT, customer TEXT, amount DOUBLE PRECISION) WITH (partitions = 2, key = 'customer');
\\dt
\\d orders
\\d+ orders
INSERT INTO orders VALUES (1, 'ann', 12.5), (2, 'bob', 3);
COPY orders (order_id, customer, amount) FROM STDIN WITH (FORMAT csv);
3,\"cy, jr\",4.5
\\.
SELECT order_id, customer, amount FROM orders ORDER BY order_id;
\\x
SELECT order_id, customer FROM orders WHERE order_id = 1;
\\x
SELECT nope FROM orders;
SELECT count(*) FROM orders;
CREATE MATERIALIZED VIEW big AS SELECT order_id FROM orders WHERE amount > 4;
\\dv
",
    )
    .unwrap();
    let output = Command::new("psql")
        .args(psql_args(&server))
        .arg("-f")
        .arg(&script)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let expected_stdout = EXPECTED_STDOUT;
    assert_eq!(stdout, expected_stdout, "stderr:\n{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "psql:{}:13: ERROR:  No field named nope.\nValid fields are orders._partition, orders._offset, orders._timestamp, orders._key, orders.order_id, orders.customer, orders.amount.\n\
             psql:{}:15: NOTICE:  backfilling: the 3 records orders already holds come first, then new ones as they arrive; SHOW JOBS shows how far it is",
            script.display(),
            script.display()
        )
    );
}

const EXPECTED_STDOUT: &str = "\
CREATE STREAM
         List of relations
 Schema |  Name  | Type  |  Owner   
--------+--------+-------+----------
 public | orders | table | postgres
(1 row)

                           Table \"public.orders\"
   Column   |            Type             | Collation | Nullable | Default 
------------+-----------------------------+-----------+----------+---------
 _partition | integer                     |           |          | 
 _offset    | bigint                      |           |          | 
 _timestamp | timestamp without time zone |           |          | 
 _key       | bytea                       |           |          | 
 order_id   | bigint                      |           |          | 
 customer   | text                        |           |          | 
 amount     | double precision            |           |          | 

                                                      Table \"public.orders\"
   Column   |            Type             | Collation | Nullable | Default | Storage  | Compression | Stats target | Description 
------------+-----------------------------+-----------+----------+---------+----------+-------------+--------------+-------------
 _partition | integer                     |           |          |         | plain    |             |              | 
 _offset    | bigint                      |           |          |         | plain    |             |              | 
 _timestamp | timestamp without time zone |           |          |         | plain    |             |              | 
 _key       | bytea                       |           |          |         | extended |             |              | 
 order_id   | bigint                      |           |          |         | plain    |             |              | 
 customer   | text                        |           |          |         | extended |             |              | 
 amount     | double precision            |           |          |         | plain    |             |              | 

INSERT 0 2
COPY 1
 order_id | customer | amount 
----------+----------+--------
        1 | ann      |   12.5
        2 | bob      |      3
        3 | cy, jr   |    4.5
(3 rows)

Expanded display is on.
-[ RECORD 1 ]-
order_id | 1
customer | ann

Expanded display is off.
 count(*) 
----------
        3
(1 row)

CREATE MATERIALIZED VIEW
             List of relations
  Schema   |     Name     | Type |  Owner   
-----------+--------------+------+----------
 public    | big          | view | postgres
 tributary | consumer_lag | view | postgres
(2 rows)

";

/// A long `\copy` reports how far it has come as NOTICEs, which psql
/// prints while the data is still being sent.
#[test]
fn psql_prints_copy_progress_notices() {
    if Command::new("psql").arg("--version").output().is_err() {
        eprintln!("SKIPPED psql_prints_copy_progress_notices: psql is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"));
    let csv = dir.path().join("rows.csv");
    let lines: String = (0..600_000).map(|i| format!("{i},row {i}\n")).collect();
    std::fs::write(&csv, lines).unwrap();
    let psql = |command: &str| {
        let output = Command::new("psql")
            .args(psql_args(&server))
            .arg("-c")
            .arg(command)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap();
        (
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    psql("CREATE STREAM copied (id BIGINT, note TEXT)");
    let (stdout, stderr) = psql(&format!("\\copy copied FROM '{}' CSV", csv.display()));
    assert_eq!(stdout.trim(), "COPY 600000", "stderr:\n{stderr}");
    // One NOTICE each time another 250,000 lines have come (counted at
    // the end of the piece of data that crossed the mark).
    let read: Vec<usize> = stderr
        .lines()
        .map(|line| {
            line.strip_prefix("NOTICE:  COPY copied: ")
                .and_then(|rest| {
                    rest.strip_suffix(" lines read; they are appended when the data ends")
                })
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a progress notice: {line}"))
        })
        .collect();
    assert_eq!(read.len(), 2, "{stderr}");
    assert!((250_000..500_000).contains(&read[0]), "{read:?}");
    assert!((500_000..600_000).contains(&read[1]), "{read:?}");
}
