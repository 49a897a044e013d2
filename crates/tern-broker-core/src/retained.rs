//! Retained messages (section 3.3.1.3): at most one per topic, kept in a tree of topic levels
//! so that a subscription's filter finds them without scanning every topic. The tree is
//! ordered, so a new subscriber gets them in a stable, sorted topic order.

use std::collections::BTreeMap;

use tern_proto::Timestamp;

use crate::message::MsgRef;

#[derive(Debug, Default)]
struct Node {
    msg: Option<MsgRef>,
    children: BTreeMap<Box<str>, Node>,
}

/// The retained messages. Memory: one node per topic level plus the messages themselves.
#[derive(Debug, Default)]
pub struct Retained {
    root: Node,
    count: usize,
    bytes: usize,
}

impl Retained {
    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Payload and topic bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Stores `msg` for its topic, or clears the topic when the payload is empty
    /// [MQTT-3.3.1-6], [MQTT-3.3.1-7]. Returns the message it replaced.
    pub fn set(&mut self, msg: MsgRef) -> Option<MsgRef> {
        let topic = msg.topic.clone();
        if msg.payload.is_empty() {
            return self.remove(&topic);
        }
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node.children.entry(Box::from(level)).or_default();
        }
        self.bytes += msg.cost();
        let old = node.msg.replace(msg);
        match &old {
            Some(o) => self.bytes -= o.cost(),
            None => self.count += 1,
        }
        old
    }

    /// Removes the retained message of `topic`.
    pub fn remove(&mut self, topic: &str) -> Option<MsgRef> {
        let levels: Vec<&str> = topic.split('/').collect();
        let old = remove(&mut self.root, &levels);
        if let Some(o) = &old {
            self.count -= 1;
            self.bytes -= o.cost();
        }
        old
    }

    /// Every retained message whose topic matches `filter` (non-shared), dropping expired
    /// ones as it goes.
    pub fn matching(&mut self, filter: &str, now: Timestamp, out: &mut Vec<MsgRef>) {
        let start = out.len();
        collect(&self.root, filter, true, out);
        let mut expired = Vec::new();
        out.retain(|m| {
            let keep = !m.expired(now);
            if !keep {
                expired.push(m.topic.clone());
            }
            keep
        });
        debug_assert!(out.len() >= start);
        for t in expired {
            self.remove(&t);
        }
    }

    /// Every retained message, for persistence.
    pub fn all(&self) -> Vec<MsgRef> {
        let mut out = Vec::with_capacity(self.count);
        all(&self.root, &mut out);
        out
    }
}

fn remove(node: &mut Node, levels: &[&str]) -> Option<MsgRef> {
    let Some((first, rest)) = levels.split_first() else {
        return node.msg.take();
    };
    let child = node.children.get_mut(*first)?;
    let old = remove(child, rest);
    if child.msg.is_none() && child.children.is_empty() {
        node.children.remove(*first);
    }
    old
}

fn all(node: &Node, out: &mut Vec<MsgRef>) {
    out.extend(node.msg.iter().cloned());
    for c in node.children.values() {
        all(c, out);
    }
}

/// Collects messages under `node` matching the remaining `filter` levels.
fn collect(node: &Node, filter: &str, first: bool, out: &mut Vec<MsgRef>) {
    let (level, rest) = match filter.split_once('/') {
        Some((l, r)) => (l, Some(r)),
        None => (filter, None),
    };
    let visible = |name: &str| !(first && name.starts_with('$'));
    match level {
        "#" => {
            // "#" matches this level's parent too ("a/#" matches "a"), handled by the caller.
            for (name, c) in &node.children {
                if visible(name) {
                    all(c, out);
                }
            }
        }
        "+" => {
            for (name, c) in &node.children {
                if visible(name) {
                    step(c, rest, out);
                }
            }
        }
        lit => {
            if let Some(c) = node.children.get(lit) {
                step(c, rest, out);
            }
        }
    }
}

fn step(child: &Node, rest: Option<&str>, out: &mut Vec<MsgRef>) {
    match rest {
        None => out.extend(child.msg.iter().cloned()),
        Some("#") => {
            out.extend(child.msg.iter().cloned());
            collect(child, "#", false, out);
        }
        Some(r) => collect(child, r, false, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use std::sync::Arc;
    use tern_codec::QoS;

    fn msg(topic: &str, payload: &str) -> MsgRef {
        Arc::new(Message::simple(
            topic,
            payload.as_bytes(),
            QoS::AtMostOnce,
            true,
        ))
    }

    fn topics(r: &mut Retained, filter: &str) -> Vec<String> {
        let mut out = Vec::new();
        r.matching(filter, Timestamp(0), &mut out);
        let mut v: Vec<String> = out.iter().map(|m| m.topic.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn set_replace_clear_mqtt_3_3_1_5_to_7() {
        let mut r = Retained::default();
        r.set(msg("a/b", "1"));
        assert!(r.set(msg("a/b", "2")).is_some());
        assert_eq!(r.len(), 1);
        let mut out = Vec::new();
        r.matching("a/b", Timestamp(0), &mut out);
        assert_eq!(&*out[0].payload, b"2");
        r.set(msg("a/b", ""));
        assert!(r.is_empty());
        assert!(r.root.children.is_empty());
    }

    #[test]
    fn filters_find_matching_topics() {
        let mut r = Retained::default();
        for t in ["a", "a/b", "a/b/c", "a/x", "b/b", "$SYS/x"] {
            r.set(msg(t, "p"));
        }
        assert_eq!(topics(&mut r, "a/#"), vec!["a", "a/b", "a/b/c", "a/x"]);
        assert_eq!(topics(&mut r, "a/+"), vec!["a/b", "a/x"]);
        assert_eq!(topics(&mut r, "+/b"), vec!["a/b", "b/b"]);
        assert_eq!(topics(&mut r, "#"), vec!["a", "a/b", "a/b/c", "a/x", "b/b"]);
        assert_eq!(topics(&mut r, "$SYS/#"), vec!["$SYS/x"]);
        assert_eq!(topics(&mut r, "a/b/c"), vec!["a/b/c"]);
        assert_eq!(topics(&mut r, "+"), vec!["a"]);
    }
}
