//! The subscription tree: one node per topic level, with `+` and `#` stored as ordinary level
//! names (they cannot occur in a topic name, so they never collide). Matching walks only the
//! branches a topic can reach. Shared subscriptions (`$share/group/filter`) hang off the node
//! of their filter, one group per name, delivered round-robin.

use crate::Map;

use tern_codec::SubscriptionOptions;

/// A session's subscription at one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sub {
    pub session: usize,
    pub options: SubscriptionOptions,
    /// 5.0 subscription identifier.
    pub id: Option<u32>,
}

#[derive(Debug, Default)]
struct Group {
    name: Box<str>,
    members: Vec<Sub>,
    next: usize,
}

#[derive(Debug, Default)]
struct Node {
    subs: Vec<Sub>,
    /// Keys into [`SubscriptionTree::groups`].
    groups: Vec<usize>,
    children: Map<Box<str>, Node>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.subs.is_empty() && self.groups.is_empty() && self.children.is_empty()
    }
}

/// One match of a topic: a plain subscription, or a shared group from which the caller
/// picks one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    Sub(Sub),
    /// A shared group; choose a member with [`SubscriptionTree::pick_shared`].
    Group(GroupRef),
}

/// Identifies a shared group found by a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRef(usize);

/// All subscriptions in the broker. Memory: one node per distinct filter level.
#[derive(Debug, Default)]
pub struct SubscriptionTree {
    root: Node,
    groups: slab::Slab<Group>,
    count: usize,
}

impl SubscriptionTree {
    /// Number of subscriptions (shared members included).
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Members of shared subscription groups.
    pub fn shared_len(&self) -> usize {
        self.groups.iter().map(|(_, g)| g.members.len()).sum()
    }

    /// Adds or replaces [MQTT-3.8.4-3] `session`'s subscription to `filter` (which may be a
    /// `$share/group/...` filter). Returns true when it replaced an existing one.
    pub fn subscribe(&mut self, filter: &str, sub: Sub) -> bool {
        let replaced = match tern_codec::topic::split_shared(filter) {
            Some((group, inner)) => {
                let groups = &mut self.groups;
                let node = node_mut(&mut self.root, inner);
                let key = match node
                    .groups
                    .iter()
                    .copied()
                    .find(|&k| &*groups[k].name == group)
                {
                    Some(k) => k,
                    None => {
                        let k = groups.insert(Group {
                            name: Box::from(group),
                            ..Group::default()
                        });
                        node.groups.push(k);
                        k
                    }
                };
                upsert(&mut groups[key].members, sub)
            }
            None => upsert(&mut node_mut(&mut self.root, filter).subs, sub),
        };
        if !replaced {
            self.count += 1;
        }
        replaced
    }

    /// Removes `session`'s subscription to `filter`; true if there was one.
    pub fn unsubscribe(&mut self, filter: &str, session: usize) -> bool {
        let (group, inner) = match tern_codec::topic::split_shared(filter) {
            Some((g, i)) => (Some(g), i),
            None => (None, filter),
        };
        let levels: Vec<&str> = inner.split('/').collect();
        let removed = remove(&mut self.root, &mut self.groups, &levels, group, session);
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// Appends every subscription matching `topic` to `out`.
    pub fn matches(&self, topic: &str, out: &mut Vec<Hit>) {
        let dollar = topic.starts_with('$');
        collect(&self.root, topic, true, dollar, out);
    }

    /// Picks the next member of a shared group, preferring one for which `online` is true.
    pub fn pick_shared(&mut self, g: GroupRef, online: impl Fn(usize) -> bool) -> Option<Sub> {
        let group = self.groups.get_mut(g.0)?;
        let n = group.members.len();
        if n == 0 {
            return None;
        }
        let start = group.next % n;
        let chosen = (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| online(group.members[i].session))
            .unwrap_or(start);
        group.next = chosen + 1;
        Some(group.members[chosen])
    }
}

fn node_mut<'n>(root: &'n mut Node, filter: &str) -> &'n mut Node {
    let mut node = root;
    for level in filter.split('/') {
        node = node.children.entry(Box::from(level)).or_default();
    }
    node
}

fn upsert(list: &mut Vec<Sub>, sub: Sub) -> bool {
    match list.iter_mut().find(|s| s.session == sub.session) {
        Some(s) => {
            *s = sub;
            true
        }
        None => {
            list.push(sub);
            false
        }
    }
}

fn remove(
    node: &mut Node,
    groups: &mut slab::Slab<Group>,
    levels: &[&str],
    group: Option<&str>,
    session: usize,
) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return match group {
            None => take(&mut node.subs, session),
            Some(name) => {
                let Some(i) = node.groups.iter().position(|&k| &*groups[k].name == name) else {
                    return false;
                };
                let key = node.groups[i];
                let found = take(&mut groups[key].members, session);
                if groups[key].members.is_empty() {
                    groups.remove(key);
                    node.groups.swap_remove(i);
                }
                found
            }
        };
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let found = remove(child, groups, rest, group, session);
    if child.is_empty() {
        node.children.remove(*first);
    }
    found
}

fn take(list: &mut Vec<Sub>, session: usize) -> bool {
    match list.iter().position(|s| s.session == session) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

fn emit(node: &Node, out: &mut Vec<Hit>) {
    out.extend(node.subs.iter().map(|s| Hit::Sub(*s)));
    out.extend(node.groups.iter().map(|&k| Hit::Group(GroupRef(k))));
}

/// Walks `node` with the remaining `topic` levels.
fn collect(node: &Node, topic: &str, first: bool, dollar: bool, out: &mut Vec<Hit>) {
    // [MQTT-4.7.2-1] wildcards in the first level do not match `$` topics.
    let wild = !(first && dollar);
    if wild && let Some(h) = node.children.get("#") {
        emit(h, out);
    }
    let (level, rest) = match topic.split_once('/') {
        Some((l, r)) => (l, Some(r)),
        None => (topic, None),
    };
    let mut visit = |child: &Node| match rest {
        Some(r) => collect(child, r, false, dollar, out),
        None => {
            emit(child, out);
            // "a/#" also matches "a" [MQTT-4.7.1-2].
            if let Some(h) = child.children.get("#") {
                emit(h, out);
            }
        }
    };
    if let Some(c) = node.children.get(level) {
        visit(c);
    }
    if wild && let Some(c) = node.children.get("+") {
        visit(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_codec::QoS;

    fn sub(session: usize) -> Sub {
        Sub {
            session,
            options: SubscriptionOptions::qos(QoS::AtLeastOnce),
            id: None,
        }
    }

    fn sessions(t: &SubscriptionTree, topic: &str) -> Vec<usize> {
        let mut out = Vec::new();
        t.matches(topic, &mut out);
        let mut v: Vec<usize> = out
            .iter()
            .filter_map(|h| match h {
                Hit::Sub(s) => Some(s.session),
                Hit::Group(_) => None,
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn wildcards_and_dollar_topics() {
        let mut t = SubscriptionTree::default();
        t.subscribe("a/b", sub(1));
        t.subscribe("a/+", sub(2));
        t.subscribe("a/#", sub(3));
        t.subscribe("#", sub(4));
        t.subscribe("+/b", sub(5));
        t.subscribe("$SYS/#", sub(6));
        assert_eq!(sessions(&t, "a/b"), vec![1, 2, 3, 4, 5]);
        assert_eq!(sessions(&t, "a"), vec![3, 4]);
        assert_eq!(sessions(&t, "a/b/c"), vec![3, 4]);
        assert_eq!(sessions(&t, "$SYS/broker/uptime"), vec![6]);
        assert_eq!(sessions(&t, "x/b"), vec![4, 5]);
        assert_eq!(t.len(), 6);
    }

    #[test]
    fn replace_and_unsubscribe_prunes() {
        let mut t = SubscriptionTree::default();
        assert!(!t.subscribe("a/b/c", sub(1)));
        assert!(t.subscribe("a/b/c", sub(1)));
        assert_eq!(t.len(), 1);
        assert!(t.unsubscribe("a/b/c", 1));
        assert!(!t.unsubscribe("a/b/c", 1));
        assert!(t.root.children.is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn shared_round_robin_prefers_online() {
        let mut t = SubscriptionTree::default();
        t.subscribe("$share/g/s/+", sub(1));
        t.subscribe("$share/g/s/+", sub(2));
        t.subscribe("$share/h/s/#", sub(3));
        let mut hits = Vec::new();
        t.matches("s/x", &mut hits);
        assert_eq!(hits.len(), 2);
        let Hit::Group(g) = hits
            .iter()
            .copied()
            .find(|h| matches!(h, Hit::Group(_)))
            .unwrap()
        else {
            panic!()
        };
        let picks: Vec<usize> = (0..4)
            .map(|_| t.pick_shared(g, |_| true).unwrap().session)
            .collect();
        assert!(picks == vec![1, 2, 1, 2] || picks == vec![3, 3, 3, 3]);
        assert!(t.unsubscribe("$share/g/s/+", 1));
        assert!(t.unsubscribe("$share/g/s/+", 2));
        assert!(t.unsubscribe("$share/h/s/#", 3));
        assert!(t.is_empty());
    }
}
