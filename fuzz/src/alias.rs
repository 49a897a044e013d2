//! tern-proto: `InboundAliases::resolve` and `OutboundAliases::assign` driven by sequences of
//! operations, each compared with a plain model.
//!
//! Input (read with `arbitrary`): the inbound maximum, the outbound maximum, then operations.
//!
//! Properties: no panic; an inbound alias outside `1..=max` is always refused; a topic with an
//! alias sets the mapping; an empty topic resolves to the last topic set for that alias and is
//! refused when there is none; at most `max` aliases are ever mapped (the table itself is
//! private, so the bound is checked on the model that every answer is compared with). Outbound aliases
//! stay within `1..=max`, `Use(a)` is only answered for the topic currently mapped to `a`, a
//! topic that is still mapped is never given a new alias, and at most `max` topics are mapped.

use std::collections::BTreeMap;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use tern_proto::alias::{AliasError, InboundAliases, OutboundAlias, OutboundAliases};

/// One step of the sequence.
#[derive(Arbitrary, Debug)]
enum Op {
    /// A PUBLISH arriving with `topic` (possibly empty) and an optional alias.
    Inbound { topic: Topic, alias: Option<u16> },
    /// A PUBLISH being sent on `topic`.
    Outbound { topic: Topic },
}

/// Topics from a small set so that operations hit the same aliases, or any string.
#[derive(Arbitrary, Debug)]
enum Topic {
    Empty,
    Small(u8),
    Any(String),
}

impl Topic {
    fn text(&self) -> String {
        match self {
            Topic::Empty => String::new(),
            Topic::Small(n) => format!("t/{}", n % 8),
            Topic::Any(s) => s.clone(),
        }
    }
}

/// The most operations one input runs.
const MAX_OPS: usize = 512;

/// Target `alias`.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(in_max_raw) = u.arbitrary::<u16>() else {
        return;
    };
    let Ok(out_max_raw) = u.arbitrary::<u16>() else {
        return;
    };
    // Mostly small maxima, so that aliases are reused and evicted; sometimes any value.
    let in_max = if in_max_raw & 0x8000 == 0 {
        in_max_raw % 10
    } else {
        in_max_raw
    };
    let out_max = if out_max_raw & 0x8000 == 0 {
        out_max_raw % 10
    } else {
        out_max_raw
    };
    let mut inbound = InboundAliases::new(in_max);
    let mut in_model: BTreeMap<u16, String> = BTreeMap::new();
    let mut outbound = OutboundAliases::new(out_max);
    let mut out_model: BTreeMap<u16, Arc<str>> = BTreeMap::new();

    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        match op {
            Op::Inbound { topic, alias } => {
                let topic = topic.text();
                let got = inbound.resolve(&topic, alias);
                let want = match alias {
                    None => Ok(None),
                    Some(a) if a == 0 || a > in_max => Err(AliasError::OutOfRange),
                    Some(a) if topic.is_empty() => in_model
                        .get(&a)
                        .map(|t| Some(t.clone()))
                        .ok_or(AliasError::Unknown),
                    Some(a) => {
                        in_model.insert(a, topic.clone());
                        Ok(Some(topic.clone()))
                    }
                };
                let got = got.map(|o| o.map(|t| t.to_string()));
                assert_eq!(got, want, "resolve({topic:?}, {alias:?}) with max {in_max}");
                assert!(in_model.len() <= usize::from(in_max));
            }
            Op::Outbound { topic } => {
                let topic: Arc<str> = Arc::from(topic.text());
                let mapped = out_model
                    .iter()
                    .find(|(_, t)| **t == topic)
                    .map(|(a, _)| *a);
                match outbound.assign(&topic) {
                    OutboundAlias::None => assert_eq!(out_max, 0, "no alias with max {out_max}"),
                    OutboundAlias::Use(a) => {
                        assert_eq!(mapped, Some(a), "Use({a}) for {topic:?}: {out_model:?}");
                    }
                    OutboundAlias::Set(a) => {
                        assert!((1..=out_max).contains(&a), "Set({a}) with max {out_max}");
                        assert_eq!(
                            mapped, None,
                            "{topic:?} still has alias {mapped:?} but got Set({a})"
                        );
                        out_model.insert(a, topic.clone());
                    }
                }
                assert!(out_model.len() <= usize::from(out_max));
            }
        }
    }
}
