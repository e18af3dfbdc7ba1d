//! Nexmark events as Arrow rows of a stream's value columns. The events of
//! one kind are numbered from 0; partition `p` of `n` holds events `p`,
//! `p + n`, `p + 2n`, ... in order, so a partition holding `k` records
//! goes on at event `p + k * n`, and a restarted generator makes exactly
//! the events it would have made.

use ::nexmark::EventGenerator;
use ::nexmark::config::NexmarkConfig;
use ::nexmark::event::{Event, EventType};
use datafusion::arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use tributary_planner::{NexmarkKind, NexmarkOptions};

use crate::error::{ExecError, Result};

/// Makes the events of one stream's partition.
#[derive(Debug, Clone)]
pub(crate) struct NexmarkPartition {
    generator: EventGenerator,
    kind: NexmarkKind,
    values: SchemaRef,
}

impl NexmarkPartition {
    /// The events of `partition` (of `partitions`) from its `records`-th
    /// on, with `values` the stream's value schema.
    pub(crate) fn new(
        options: &NexmarkOptions,
        base_time_ms: u64,
        partition: u32,
        partitions: u32,
        records: u64,
        values: SchemaRef,
    ) -> Self {
        let (event_type, share) = match options.kind {
            NexmarkKind::Person => (EventType::Person, 1),
            NexmarkKind::Auction => (EventType::Auction, 3),
            NexmarkKind::Bid => (EventType::Bid, 46),
        };
        // Event times advance at the stream's rate: the generator spaces
        // all events (of the 50 in a cycle, `share` are of this kind).
        let all_events_per_sec = (options.rate_per_sec.saturating_mul(50) / share).max(1);
        let rate = usize::try_from(all_events_per_sec).unwrap_or(usize::MAX);
        let config = NexmarkConfig {
            base_time: base_time_ms,
            first_rate: rate,
            next_rate: rate,
            ..Default::default()
        };
        let generator = EventGenerator::new(config)
            .with_type_filter(event_type)
            .with_offset(u64::from(partition) + records * u64::from(partitions))
            .with_step(u64::from(partitions));
        Self {
            generator,
            kind: options.kind,
            values,
        }
    }

    /// The number (among events of its kind) of the next event.
    pub(crate) fn next_event(&self) -> u64 {
        self.generator.offset()
    }

    /// The next `count` events as rows of the value columns.
    pub(crate) fn next_rows(&mut self, count: usize) -> Result<RecordBatch> {
        let mut columns = Columns::new(self.kind, count);
        for event in self.generator.by_ref().take(count) {
            columns.push(event);
        }
        let arrays = columns.finish();
        let arrays = arrays
            .iter()
            .zip(self.values.fields())
            .map(|(array, field)| cast(array, field.data_type()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ExecError::Internal(format!("nexmark column types: {e}")))?;
        RecordBatch::try_new(self.values.clone(), arrays)
            .map_err(|e| ExecError::Internal(format!("nexmark rows: {e}")))
    }
}

/// Column builders for one kind's events, in the order of
/// [`NexmarkKind::columns`]. One exists per batch of thousands of rows, so
/// the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Columns {
    Person {
        id: Int64Builder,
        name: StringBuilder,
        email_address: StringBuilder,
        credit_card: StringBuilder,
        city: StringBuilder,
        state: StringBuilder,
        date_time: TimestampMillisecondBuilder,
        extra: StringBuilder,
    },
    Auction {
        id: Int64Builder,
        item_name: StringBuilder,
        description: StringBuilder,
        initial_bid: Int64Builder,
        reserve: Int64Builder,
        date_time: TimestampMillisecondBuilder,
        expires: TimestampMillisecondBuilder,
        seller: Int64Builder,
        category: Int64Builder,
        extra: StringBuilder,
    },
    Bid {
        auction: Int64Builder,
        bidder: Int64Builder,
        price: Int64Builder,
        channel: StringBuilder,
        url: StringBuilder,
        date_time: TimestampMillisecondBuilder,
        extra: StringBuilder,
    },
}

/// Nexmark's ids, prices and times are `usize`/`u64` well below `i64::MAX`.
fn int(value: impl TryInto<i64>) -> i64 {
    value.try_into().unwrap_or(i64::MAX)
}

impl Columns {
    fn new(kind: NexmarkKind, rows: usize) -> Self {
        let ints = || Int64Builder::with_capacity(rows);
        let texts = || StringBuilder::with_capacity(rows, rows * 16);
        let times = || TimestampMillisecondBuilder::with_capacity(rows);
        match kind {
            NexmarkKind::Person => Self::Person {
                id: ints(),
                name: texts(),
                email_address: texts(),
                credit_card: texts(),
                city: texts(),
                state: texts(),
                date_time: times(),
                extra: texts(),
            },
            NexmarkKind::Auction => Self::Auction {
                id: ints(),
                item_name: texts(),
                description: texts(),
                initial_bid: ints(),
                reserve: ints(),
                date_time: times(),
                expires: times(),
                seller: ints(),
                category: ints(),
                extra: texts(),
            },
            NexmarkKind::Bid => Self::Bid {
                auction: ints(),
                bidder: ints(),
                price: ints(),
                channel: texts(),
                url: texts(),
                date_time: times(),
                extra: texts(),
            },
        }
    }

    /// Adds an event; the generator's type filter makes every event the
    /// builders' kind.
    fn push(&mut self, event: Event) {
        match (self, event) {
            (
                Self::Person {
                    id,
                    name,
                    email_address,
                    credit_card,
                    city,
                    state,
                    date_time,
                    extra,
                },
                Event::Person(p),
            ) => {
                id.append_value(int(p.id));
                name.append_value(&p.name);
                email_address.append_value(&p.email_address);
                credit_card.append_value(&p.credit_card);
                city.append_value(&p.city);
                state.append_value(&p.state);
                date_time.append_value(int(p.date_time));
                extra.append_value(&p.extra);
            }
            (
                Self::Auction {
                    id,
                    item_name,
                    description,
                    initial_bid,
                    reserve,
                    date_time,
                    expires,
                    seller,
                    category,
                    extra,
                },
                Event::Auction(a),
            ) => {
                id.append_value(int(a.id));
                item_name.append_value(&a.item_name);
                description.append_value(&a.description);
                initial_bid.append_value(int(a.initial_bid));
                reserve.append_value(int(a.reserve));
                date_time.append_value(int(a.date_time));
                expires.append_value(int(a.expires));
                seller.append_value(int(a.seller));
                category.append_value(int(a.category));
                extra.append_value(&a.extra);
            }
            (
                Self::Bid {
                    auction,
                    bidder,
                    price,
                    channel,
                    url,
                    date_time,
                    extra,
                },
                Event::Bid(b),
            ) => {
                auction.append_value(int(b.auction));
                bidder.append_value(int(b.bidder));
                price.append_value(int(b.price));
                channel.append_value(&b.channel);
                url.append_value(&b.url);
                date_time.append_value(int(b.date_time));
                extra.append_value(&b.extra);
            }
            _ => debug_assert!(false, "the type filter lets only one kind through"),
        }
    }

    fn finish(self) -> Vec<ArrayRef> {
        fn a(builder: &mut impl datafusion::arrow::array::ArrayBuilder) -> ArrayRef {
            builder.finish()
        }
        match self {
            Self::Person {
                mut id,
                mut name,
                mut email_address,
                mut credit_card,
                mut city,
                mut state,
                mut date_time,
                mut extra,
            } => vec![
                a(&mut id),
                a(&mut name),
                a(&mut email_address),
                a(&mut credit_card),
                a(&mut city),
                a(&mut state),
                a(&mut date_time),
                a(&mut extra),
            ],
            Self::Auction {
                mut id,
                mut item_name,
                mut description,
                mut initial_bid,
                mut reserve,
                mut date_time,
                mut expires,
                mut seller,
                mut category,
                mut extra,
            } => vec![
                a(&mut id),
                a(&mut item_name),
                a(&mut description),
                a(&mut initial_bid),
                a(&mut reserve),
                a(&mut date_time),
                a(&mut expires),
                a(&mut seller),
                a(&mut category),
                a(&mut extra),
            ],
            Self::Bid {
                mut auction,
                mut bidder,
                mut price,
                mut channel,
                mut url,
                mut date_time,
                mut extra,
            } => vec![
                a(&mut auction),
                a(&mut bidder),
                a(&mut price),
                a(&mut channel),
                a(&mut url),
                a(&mut date_time),
                a(&mut extra),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use tributary_planner::StreamDefinition;

    use super::*;
    use crate::format::StreamSchemas;

    fn bids(options: &NexmarkOptions) -> SchemaRef {
        let definition = StreamDefinition {
            columns: options.kind.columns(),
            watermark: None,
            format: tributary_planner::Format::Json,
            key: None,
            connector: None,
            view: None,
        };
        StreamSchemas::new(&definition).unwrap().values
    }

    /// Two partitions resumed half way hold the same events, in the same
    /// order, as one generator running from the start.
    #[test]
    fn partitions_interleave_and_resume_where_they_stopped() {
        let options = NexmarkOptions {
            kind: NexmarkKind::Bid,
            rate_per_sec: 1000,
            events_max: None,
            base_time_ms: Some(1_700_000_000_000),
        };
        let values = bids(&options);
        let base = 1_700_000_000_000;
        let whole = NexmarkPartition::new(&options, base, 0, 1, 0, values.clone())
            .next_rows(40)
            .unwrap();
        let mut parts = Vec::new();
        for partition in 0..2 {
            let mut first = NexmarkPartition::new(&options, base, partition, 2, 0, values.clone());
            let a = first.next_rows(10).unwrap();
            assert_eq!(first.next_event(), u64::from(partition) + 20);
            let b = NexmarkPartition::new(&options, base, partition, 2, 10, values.clone())
                .next_rows(10)
                .unwrap();
            parts.push([a, b]);
        }
        let price = |batch: &RecordBatch, row: usize| {
            batch.column(2).as_primitive::<Int64Type>().value(row)
        };
        for event in 0..40 {
            let (partition, nth) = (event % 2, event / 2);
            let half = &parts[partition][nth / 10];
            assert_eq!(price(half, nth % 10), price(&whole, event), "event {event}");
        }
        // A thousand bids a second: 40 bids span about 40 ms of event time.
        let times = whole
            .column(5)
            .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
        let span_ms = (times.value(39) - times.value(0)) / 1000;
        assert!((30..=50).contains(&span_ms), "{span_ms} ms");
        assert!(times.value(0) / 1000 >= 1_700_000_000_000);
    }

    #[test]
    fn every_kind_fills_its_columns() {
        for kind in [NexmarkKind::Person, NexmarkKind::Auction, NexmarkKind::Bid] {
            let options = NexmarkOptions {
                kind,
                rate_per_sec: 100,
                events_max: None,
                base_time_ms: None,
            };
            let values = bids(&options);
            let rows = NexmarkPartition::new(&options, 0, 0, 1, 0, values.clone())
                .next_rows(5)
                .unwrap();
            assert_eq!(rows.num_rows(), 5);
            assert_eq!(rows.schema(), values);
            assert_eq!(rows.num_columns(), kind.columns().len());
        }
    }
}
