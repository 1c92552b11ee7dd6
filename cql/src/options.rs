//! Connection settings of the CQL store.

use std::time::Duration;

pub use scylla::statement::Consistency;

/// Keyspace replication, validated so it can be written into DDL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replication {
    Simple(u32),
    /// Replication factor per datacenter.
    NetworkTopology(Vec<(String, u32)>),
}

impl Replication {
    /// `SimpleStrategy:1` or `NetworkTopologyStrategy:dc1=3,dc2=3`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (class, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("{text:?}: expected <strategy>:<factors>"))?;
        let rf = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| format!("{s:?} is not a replication factor (1-100)"))
        };
        match class.trim() {
            "SimpleStrategy" => Ok(Replication::Simple(rf(rest)?)),
            "NetworkTopologyStrategy" => {
                let mut dcs = Vec::new();
                for part in rest.split(',') {
                    let (dc, n) = part
                        .split_once('=')
                        .ok_or_else(|| format!("{part:?}: expected <datacenter>=<factor>"))?;
                    let dc = dc.trim();
                    if dc.is_empty()
                        || !dc
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(format!("{dc:?} is not a datacenter name"));
                    }
                    dcs.push((dc.to_string(), rf(n)?));
                }
                Ok(Replication::NetworkTopology(dcs))
            }
            other => Err(format!(
                "{other:?}: use SimpleStrategy or NetworkTopologyStrategy"
            )),
        }
    }

    /// The CQL map literal of `WITH replication = …`.
    pub fn cql(&self) -> String {
        match self {
            Replication::Simple(rf) => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")
            }
            Replication::NetworkTopology(dcs) => {
                let mut out = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, rf) in dcs {
                    out.push_str(&format!(", '{dc}': {rf}"));
                }
                out.push('}');
                out
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct CqlOptions {
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub replication: Replication,
    /// Consistency of reads and writes; serial consistency of LWTs follows (local or not).
    pub consistency: Consistency,
    /// Deadline of one request (the driver's own default is 30 s).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl CqlOptions {
    pub fn new(nodes: Vec<String>, keyspace: impl Into<String>) -> Self {
        CqlOptions {
            nodes,
            keyspace: keyspace.into(),
            replication: Replication::Simple(1),
            consistency: Consistency::LocalQuorum,
            request_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// `LOCAL_QUORUM`, `QUORUM`, `ONE`, … as written in configuration.
pub fn parse_consistency(text: &str) -> Result<Consistency, String> {
    Ok(match text.trim().to_ascii_uppercase().as_str() {
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        other => return Err(format!("{other:?} is not a consistency level")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_parses_and_renders() {
        assert_eq!(
            Replication::parse("SimpleStrategy:3").expect("valid").cql(),
            "{'class': 'SimpleStrategy', 'replication_factor': 3}"
        );
        assert_eq!(
            Replication::parse("NetworkTopologyStrategy:dc1=3,dc2=2")
                .expect("valid")
                .cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
        );
        assert!(Replication::parse("SimpleStrategy:0").is_err());
        assert!(Replication::parse("NetworkTopologyStrategy:dc'1=3").is_err());
        assert!(Replication::parse("Other:1").is_err());
    }

    #[test]
    fn consistency_names() {
        assert_eq!(
            parse_consistency("local_quorum").expect("valid"),
            Consistency::LocalQuorum
        );
        assert!(parse_consistency("most").is_err());
    }
}
