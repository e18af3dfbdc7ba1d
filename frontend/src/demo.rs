//! `tributary serve --demo`: sample streams fed by the built-in Nexmark
//! generator, views over windows and a sink, so the web console has live
//! data from the first minute. Each object is created only if its name is
//! free, so restarting with `--demo` keeps what is there.

use anyhow::Context;
use tracing::info;
use tributary_executor::Engine;

/// The demo's objects, in the order they depend on one another: the
/// stream each statement creates (a sink's is its target), and the
/// statement.
const OBJECTS: [(&str, &str); 5] = [
    (
        "bids",
        "CREATE STREAM bids WITH (connector = 'nexmark', kind = 'bid', rate = 50, \
         partitions = 2, retention = '1 hour')",
    ),
    (
        "bids_per_channel",
        "CREATE MATERIALIZED VIEW bids_per_channel AS \
         SELECT channel, count(*) AS bids, avg(price) AS avg_price, max(price) AS top_price \
         FROM bids GROUP BY channel",
    ),
    (
        "top_bid_10s",
        "CREATE MATERIALIZED VIEW top_bid_10s AS \
         SELECT window_start, window_end, count(*) AS bids, max(price) AS top_price \
         FROM TUMBLE(bids, date_time, INTERVAL '10 seconds') \
         GROUP BY window_start, window_end EMIT ON WINDOW CLOSE",
    ),
    (
        "busy_auctions",
        "CREATE MATERIALIZED VIEW busy_auctions AS \
         SELECT auction, window_start, window_end, count(*) AS bids \
         FROM HOP(bids, date_time, INTERVAL '10 seconds', INTERVAL '1 minute') \
         GROUP BY auction, window_start, window_end HAVING count(*) > 2",
    ),
    (
        "big_bids_out",
        "CREATE SINK big_bids INTO big_bids_out AS \
         SELECT auction, bidder, price, date_time FROM bids WHERE price > 10000000",
    ),
];

/// Creates whichever demo objects do not exist yet.
pub(crate) async fn create(engine: &std::sync::Arc<Engine>) -> anyhow::Result<()> {
    let session = engine.session();
    for (stream, statement) in OBJECTS {
        if engine.log().stream(stream).is_ok() {
            continue;
        }
        session
            .execute(statement)
            .await
            .with_context(|| format!("demo: {statement}"))?;
        info!(stream, "demo: created");
    }
    Ok(())
}
