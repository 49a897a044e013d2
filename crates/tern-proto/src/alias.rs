//! Topic aliases (MQTT 5.0 section 3.3.2.3.4): the receiver's table that maps alias numbers
//! to topics, bounded by the maximum it announced, and the sender's choice of which topics
//! get an alias, bounded by the maximum the peer announced.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Why an inbound alias was refused; the connection is closed with 0x94 or 0x82.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasError {
    /// [MQTT-3.3.2-9] alias 0 or above the announced maximum: "topic alias invalid".
    OutOfRange,
    /// An empty topic with an alias that has no mapping yet: protocol error.
    Unknown,
}

/// Aliases a peer has set on this connection. Memory: `max` topic strings at most.
#[derive(Debug, Default)]
pub struct InboundAliases {
    max: u16,
    /// One slot per alias up to the highest set so far (none until the first).
    table: Option<alloc::boxed::Box<[Option<Arc<str>>]>>,
}

impl InboundAliases {
    /// A table for aliases `1..=max` (the Topic Alias Maximum we announced).
    pub fn new(max: u16) -> Self {
        Self { max, table: None }
    }

    /// Resolves an incoming PUBLISH's topic: sets the mapping when both a topic and an alias
    /// are given, looks it up when the topic is empty.
    pub fn resolve(
        &mut self,
        topic: &str,
        alias: Option<u16>,
    ) -> Result<Option<Arc<str>>, AliasError> {
        let Some(alias) = alias else {
            return Ok(None);
        };
        if alias == 0 || alias > self.max {
            return Err(AliasError::OutOfRange);
        }
        let idx = usize::from(alias - 1);
        if topic.is_empty() {
            return self
                .table
                .as_ref()
                .and_then(|t| t.get(idx).cloned().flatten())
                .map(Some)
                .ok_or(AliasError::Unknown);
        }
        // Grown to the highest alias used so far, not to `max` at once.
        let mut table = self.table.take().map(Vec::from).unwrap_or_default();
        if table.len() <= idx {
            table.resize(idx + 1, None);
        }
        let t: Arc<str> = Arc::from(topic);
        table[idx] = Some(t.clone());
        self.table = Some(table.into_boxed_slice());
        Ok(Some(t))
    }
}

/// What the sender should put in an outgoing PUBLISH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundAlias {
    /// No alias: send the topic.
    None,
    /// Send the topic and this new alias.
    Set(u16),
    /// Send an empty topic and this alias.
    Use(u16),
}

/// Aliases this side assigns. Topics get aliases in order of first use; once all are taken,
/// the least recently assigned one is reused. Memory: `max` topic strings at most, and
/// nothing until the first alias is assigned (most connections never use one).
#[derive(Debug, Default)]
pub struct OutboundAliases {
    max: u16,
    next_victim: u16,
    table: Option<alloc::boxed::Box<OutboundTable>>,
}

#[derive(Debug, Default)]
struct OutboundTable {
    by_topic: BTreeMap<Arc<str>, u16>,
    by_alias: Vec<Arc<str>>,
}

impl OutboundAliases {
    /// Aliases `1..=max` (the peer's Topic Alias Maximum; 0 disables aliases).
    pub fn new(max: u16) -> Self {
        Self {
            max,
            next_victim: 0,
            table: None,
        }
    }

    /// Chooses the alias for `topic`.
    pub fn assign(&mut self, topic: &Arc<str>) -> OutboundAlias {
        if self.max == 0 {
            return OutboundAlias::None;
        }
        let t = self.table.get_or_insert_with(Default::default);
        if let Some(&a) = t.by_topic.get(topic) {
            return OutboundAlias::Use(a);
        }
        let alias = if t.by_alias.len() < usize::from(self.max) {
            t.by_alias.push(topic.clone());
            t.by_alias.len() as u16
        } else {
            let idx = usize::from(self.next_victim);
            self.next_victim = (self.next_victim + 1) % self.max;
            let old = core::mem::replace(&mut t.by_alias[idx], topic.clone());
            t.by_topic.remove(&old);
            idx as u16 + 1
        };
        t.by_topic.insert(topic.clone(), alias);
        OutboundAlias::Set(alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_alias_rules_mqtt_3_3_2_8_to_3_3_2_12() {
        let mut a = InboundAliases::new(2);
        assert_eq!(a.resolve("t", None), Ok(None));
        assert_eq!(a.resolve("t", Some(3)), Err(AliasError::OutOfRange));
        assert_eq!(a.resolve("t", Some(0)), Err(AliasError::OutOfRange));
        assert_eq!(a.resolve("", Some(1)), Err(AliasError::Unknown));
        assert_eq!(a.resolve("a/b", Some(1)).unwrap().as_deref(), Some("a/b"));
        assert_eq!(a.resolve("", Some(1)).unwrap().as_deref(), Some("a/b"));
        assert_eq!(a.resolve("c", Some(1)).unwrap().as_deref(), Some("c"));
        assert_eq!(a.resolve("", Some(1)).unwrap().as_deref(), Some("c"));
        assert_eq!(
            InboundAliases::new(0).resolve("t", Some(1)),
            Err(AliasError::OutOfRange)
        );
    }

    #[test]
    fn outbound_reuses_and_evicts() {
        let mut o = OutboundAliases::new(2);
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        assert_eq!(o.assign(&a), OutboundAlias::Set(1));
        assert_eq!(o.assign(&a), OutboundAlias::Use(1));
        assert_eq!(o.assign(&b), OutboundAlias::Set(2));
        assert_eq!(o.assign(&c), OutboundAlias::Set(1));
        assert_eq!(o.assign(&a), OutboundAlias::Set(2));
        assert_eq!(o.assign(&c), OutboundAlias::Use(1));
        assert_eq!(OutboundAliases::new(0).assign(&a), OutboundAlias::None);
    }
}
