//! Choosing a generation's protocol. The assignors (range, roundrobin,
//! cooperative-sticky) run in the clients; the broker only picks a name
//! every member supports, as Kafka does: each member votes for the first
//! protocol in its own list that all members support, the most votes win,
//! and a tie goes to the one the first member prefers.

use super::member::Member;

/// The protocol every member supports that most members prefer, if there
/// is one.
pub(crate) fn select(members: &[Member]) -> Option<String> {
    let first = members.first()?;
    let common: Vec<&str> = first
        .protocols
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| members.iter().all(|m| m.supports(name)))
        .collect();
    let mut votes = vec![0usize; common.len()];
    for member in members {
        let choice = member
            .protocols
            .iter()
            .find_map(|(name, _)| common.iter().position(|c| c == name));
        if let Some(choice) = choice {
            votes[choice] += 1;
        }
    }
    // max_by_key keeps the last of equal maxima: walk backwards so a tie
    // goes to the first member's earlier preference.
    (0..common.len())
        .rev()
        .max_by_key(|&i| votes[i])
        .map(|i| common[i].to_string())
}

/// Whether a member offering `protocols` can join `others`: at least one
/// of its protocols is supported by all of them.
pub(crate) fn compatible<'a>(
    others: impl Iterator<Item = &'a Member> + Clone,
    protocols: &[(String, bytes::Bytes)],
) -> bool {
    protocols
        .iter()
        .any(|(name, _)| others.clone().all(|m| m.supports(name)))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use super::*;

    fn member(protocols: &[&str]) -> Member {
        Member {
            id: "m".into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            session_deadline: Instant::now(),
            synced: false,
            joining: None,
            syncing: None,
        }
    }

    #[test]
    fn the_common_protocol_most_members_prefer_wins() {
        let members = [
            member(&["cooperative-sticky", "range"]),
            member(&["range", "cooperative-sticky"]),
            member(&["range", "roundrobin", "cooperative-sticky"]),
        ];
        assert_eq!(select(&members).as_deref(), Some("range"));
    }

    #[test]
    fn a_tie_goes_to_the_first_members_preference() {
        let members = [
            member(&["roundrobin", "range"]),
            member(&["range", "roundrobin"]),
        ];
        assert_eq!(select(&members).as_deref(), Some("roundrobin"));
    }

    #[test]
    fn no_common_protocol_is_none() {
        let members = [member(&["range"]), member(&["roundrobin"])];
        assert_eq!(select(&members), None);
        assert!(!compatible(members[..1].iter(), &members[1].protocols));
        assert!(compatible(
            members[..1].iter(),
            &member(&["x", "range"]).protocols
        ));
    }
}
