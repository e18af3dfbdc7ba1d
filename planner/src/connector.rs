//! Streams fed by a built-in connector instead of by clients:
//! `CREATE STREAM bids WITH (connector = 'nexmark', kind = 'bid', rate = 10000)`.
//! The connector fixes the columns (Nexmark's person, auction and bid
//! events, as in the Nexmark benchmark and RisingWave's source) and a
//! default watermark; the executor runs the generator.

use serde::{Deserialize, Serialize};

use crate::error::{PlanError, Result};
use crate::stream_definition::{ColumnDefinition, WatermarkDefinition};

/// The source that writes a stream's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "connector")]
pub enum ConnectorDefinition {
    /// The Nexmark event generator.
    Nexmark(NexmarkOptions),
}

/// Which of Nexmark's three event types a stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NexmarkKind {
    /// People registering to buy or sell (1 of every 50 events).
    Person,
    /// Items put up for auction (3 of every 50).
    Auction,
    /// Bids on auctions (46 of every 50).
    Bid,
}

impl NexmarkKind {
    /// Parses the `kind` option.
    pub fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "person" => Ok(Self::Person),
            "auction" => Ok(Self::Auction),
            "bid" => Ok(Self::Bid),
            other => Err(PlanError::InvalidOption {
                name: "kind".into(),
                reason: format!("{other:?} is not one of person, auction, bid"),
            }),
        }
    }

    /// The columns of a stream of this kind, in order.
    pub fn columns(self) -> Vec<ColumnDefinition> {
        let columns: &[(&str, &str)] = match self {
            Self::Person => &[
                ("id", "BIGINT"),
                ("name", "VARCHAR"),
                ("email_address", "VARCHAR"),
                ("credit_card", "VARCHAR"),
                ("city", "VARCHAR"),
                ("state", "VARCHAR"),
                ("date_time", "TIMESTAMP"),
                ("extra", "VARCHAR"),
            ],
            Self::Auction => &[
                ("id", "BIGINT"),
                ("item_name", "VARCHAR"),
                ("description", "VARCHAR"),
                ("initial_bid", "BIGINT"),
                ("reserve", "BIGINT"),
                ("date_time", "TIMESTAMP"),
                ("expires", "TIMESTAMP"),
                ("seller", "BIGINT"),
                ("category", "BIGINT"),
                ("extra", "VARCHAR"),
            ],
            Self::Bid => &[
                ("auction", "BIGINT"),
                ("bidder", "BIGINT"),
                ("price", "BIGINT"),
                ("channel", "VARCHAR"),
                ("url", "VARCHAR"),
                ("date_time", "TIMESTAMP"),
                ("extra", "VARCHAR"),
            ],
        };
        columns
            .iter()
            .map(|(name, sql_type)| ColumnDefinition {
                name: (*name).to_string(),
                sql_type: (*sql_type).to_string(),
                nullable: false,
            })
            .collect()
    }

    /// The watermark when the statement declares none: event time less
    /// four seconds, as the Nexmark queries are usually run.
    pub fn default_watermark() -> WatermarkDefinition {
        WatermarkDefinition {
            column: "date_time".into(),
            expression: "date_time - INTERVAL '4 seconds'".into(),
            idle_timeout_ms: None,
        }
    }
}

/// `connector = 'nexmark'` and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NexmarkOptions {
    /// `kind = 'person' | 'auction' | 'bid'`.
    pub kind: NexmarkKind,
    /// `rate = N`: events of this kind per second, across partitions.
    pub rate_per_sec: u64,
    /// `events = N`: stop after this many (never, when absent).
    pub events_max: Option<u64>,
    /// The event time of the first event, in milliseconds since the epoch:
    /// fixed when the stream is created, so that after a restart the
    /// generator goes on with the same events it would have made.
    pub base_time_ms: Option<u64>,
}

/// The generator's rate when the statement gives none.
pub const NEXMARK_DEFAULT_RATE_PER_SEC: u64 = 1_000;

/// The fastest a generator may be asked to run.
pub const NEXMARK_MAX_RATE_PER_SEC: u64 = 10_000_000;

/// The connector options of a `CREATE STREAM`, gathered while its `WITH`
/// list is read.
#[derive(Debug, Default)]
pub(crate) struct ConnectorOptions {
    pub(crate) connector: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) rate_per_sec: Option<u64>,
    pub(crate) events_max: Option<u64>,
}

impl ConnectorOptions {
    /// The connector these options describe, if any; options that need a
    /// connector without one are refused.
    pub(crate) fn build(self) -> Result<Option<ConnectorDefinition>> {
        let Some(connector) = self.connector else {
            for (name, given) in [
                ("kind", self.kind.is_some()),
                ("rate", self.rate_per_sec.is_some()),
                ("events", self.events_max.is_some()),
            ] {
                if given {
                    return Err(PlanError::InvalidOption {
                        name: name.into(),
                        reason: "only a stream with a connector takes it".into(),
                    });
                }
            }
            return Ok(None);
        };
        if !connector.eq_ignore_ascii_case("nexmark") {
            return Err(PlanError::InvalidOption {
                name: "connector".into(),
                reason: format!("{connector:?} is not a connector (there is 'nexmark')"),
            });
        }
        let kind = self.kind.ok_or_else(|| PlanError::InvalidOption {
            name: "kind".into(),
            reason: "a nexmark stream needs kind = 'person', 'auction' or 'bid'".into(),
        })?;
        let rate_per_sec = self.rate_per_sec.unwrap_or(NEXMARK_DEFAULT_RATE_PER_SEC);
        if !(1..=NEXMARK_MAX_RATE_PER_SEC).contains(&rate_per_sec) {
            return Err(PlanError::InvalidOption {
                name: "rate".into(),
                reason: format!("must be between 1 and {NEXMARK_MAX_RATE_PER_SEC} events a second"),
            });
        }
        Ok(Some(ConnectorDefinition::Nexmark(NexmarkOptions {
            kind: NexmarkKind::parse(&kind)?,
            rate_per_sec,
            events_max: self.events_max,
            base_time_ms: None,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_build_a_connector_or_say_what_is_wrong() {
        let nexmark = ConnectorOptions {
            connector: Some("NexMark".into()),
            kind: Some("bid".into()),
            events_max: Some(10),
            ..Default::default()
        };
        assert_eq!(
            nexmark.build().unwrap(),
            Some(ConnectorDefinition::Nexmark(NexmarkOptions {
                kind: NexmarkKind::Bid,
                rate_per_sec: NEXMARK_DEFAULT_RATE_PER_SEC,
                events_max: Some(10),
                base_time_ms: None,
            }))
        );
        let no_kind = ConnectorOptions {
            connector: Some("nexmark".into()),
            ..Default::default()
        };
        assert!(no_kind.build().unwrap_err().to_string().contains("kind"));
        let kind_alone = ConnectorOptions {
            kind: Some("bid".into()),
            ..Default::default()
        };
        assert!(kind_alone.build().is_err());
        let unknown = ConnectorOptions {
            connector: Some("kafka".into()),
            kind: Some("bid".into()),
            ..Default::default()
        };
        assert!(unknown.build().is_err());
        let too_fast = ConnectorOptions {
            connector: Some("nexmark".into()),
            kind: Some("bid".into()),
            rate_per_sec: Some(0),
            ..Default::default()
        };
        assert!(too_fast.build().is_err());
    }
}
