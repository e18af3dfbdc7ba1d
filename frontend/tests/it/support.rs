//! A real `tributary serve` process for tests (the harness shared with the
//! sqllogictest runner), and a tokio-postgres connection to it.

use std::path::Path;

pub(crate) use tributary_sqllogictest::Server;

/// Starts this build's `tributary` on `data_dir`.
pub(crate) fn start(data_dir: &Path) -> Server {
    Server::start(Path::new(env!("CARGO_BIN_EXE_tributary")), data_dir).unwrap()
}

/// Starts this build's `tributary` on `data_dir` with its Kafka listener on
/// `kafka_listen`: a server restarted where the last one listened.
pub(crate) fn start_with_kafka(data_dir: &Path, kafka_listen: &str) -> Server {
    Server::start_with_kafka(
        Path::new(env!("CARGO_BIN_EXE_tributary")),
        data_dir,
        kafka_listen,
    )
    .unwrap()
}

/// The arguments that point psql at `server` (without reading ~/.psqlrc).
pub(crate) fn psql_args(server: &Server) -> Vec<String> {
    let (host, port) = server.pg.rsplit_once(':').unwrap();
    [
        "-X",
        "-h",
        host,
        "-p",
        port,
        "-U",
        "tributary",
        "-d",
        "tributary",
    ]
    .map(str::to_string)
    .to_vec()
}

/// Connects with tokio-postgres.
pub(crate) async fn connect(server: &Server) -> tokio_postgres::Client {
    connect_with_socket(server).await.0
}

/// Connects with tokio-postgres; also the task that owns the socket, so
/// that a test can close it without a word (abort the task).
pub(crate) async fn connect_with_socket(
    server: &Server,
) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
    let (host, port) = server.pg.rsplit_once(':').unwrap();
    let config = format!("host={host} port={port} user=tributary dbname=tributary");
    let (client, connection) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .unwrap();
    let socket = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, socket)
}

/// The SQLSTATE and message of a database error (panics on any other).
pub(crate) fn sqlstate_and_message(error: &tokio_postgres::Error) -> (String, String) {
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {error}"));
    (db.code().code().to_string(), db.message().to_string())
}

/// Runs `statement`, which must fail with `sqlstate` and a message that
/// contains `needle`.
pub(crate) async fn assert_refused(
    client: &tokio_postgres::Client,
    statement: &str,
    sqlstate: &str,
    needle: &str,
) {
    let error = client
        .batch_execute(statement)
        .await
        .map(|()| panic!("{statement} was accepted"))
        .unwrap_err();
    let (code, message) = sqlstate_and_message(&error);
    assert_eq!(code, sqlstate, "{statement}: {message}");
    assert!(message.contains(needle), "{statement}: {message}");
}

/// What the server answers a Kafka producer (librdkafka, no retries) that
/// sends `payload` to `topic`: `None` when it is stored.
pub(crate) async fn kafka_produce_error(
    server: &Server,
    topic: &str,
    payload: &str,
) -> Option<rdkafka::types::RDKafkaErrorCode> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &server.kafka)
        .set("message.timeout.ms", "10000")
        .set("retries", "0")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::<(), _>::to(topic).payload(payload),
            std::time::Duration::from_secs(10),
        )
        .await
        .err()
        .and_then(|(error, _)| error.rdkafka_error_code())
}

/// The rows of `query`, each as text, in the query's order.
pub(crate) async fn rows(client: &tokio_postgres::Client, query: &str) -> Vec<String> {
    client
        .simple_query(query)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect()
}
