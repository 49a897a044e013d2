//! Mosquitto ACL files (`acl_file`): parsing and the access decisions of
//! `src/security_default.c` (Mosquitto 2.0), plus tern's subscribe-time decision.
//!
//! Owns the file format and the rules below. Must not read files (the caller passes the
//! contents), must not panic on any input.
//!
//! # Format
//! ```text
//! # topic lines before the first "user" line apply to anonymous clients
//! topic read $SYS/#
//! user alice
//! topic readwrite home/alice/#
//! topic deny home/alice/secret
//! pattern write sensor/%u/data
//! ```
//! - `topic [read|write|readwrite|deny] FILTER`: the access word is optional (default
//!   `readwrite`); when it is given, the filter is the rest of the line and may contain
//!   spaces.
//! - `user NAME` starts the rules of an MQTT user name (the rest of the line); two sections
//!   for the same user are merged, as in Mosquitto.
//! - `pattern [access] FILTER` applies to every client; a level that is exactly `%u` is
//!   replaced by the user name and `%c` by the client id. `%u` or `%c` inside a longer level
//!   is literal text, as in Mosquitto after 2.0 (`mosquitto_topic_matches_sub_with_pattern`
//!   in `lib/util_topic.c`). Debian's Mosquitto 2.0.11 still substitutes inside a level
//!   (`x%u/#` matched `xalice/1` for `alice` when tried); tern warns about such patterns.
//! - Lines starting with `#` and blank lines are skipped.
//!
//! Unlike Mosquitto, which ignores unknown keywords, tern reports them (with a did-you-mean),
//! and a `topic read` line with no filter after the access word is an error rather than a
//! grant on a topic literally named `read`.
//!
//! # Decisions ([`AclFile::check`])
//! The rules that apply to a client are its own section (the `user` section of its user name,
//! or the anonymous section when it has none) plus the patterns. Then:
//! 1. **Deny wins**: if any applicable `deny` rule matches the topic, access is refused.
//!    (Mosquitto 2.0 checks a user's grants before the patterns' denies; tern checks every
//!    deny first, so a `pattern deny` cannot be bypassed by a broader `topic` grant.)
//! 2. Otherwise access is granted only if an applicable rule with that access matches.
//! 3. Nothing is allowed that no line grants; an empty file refuses everything.
//!
//! Patterns and dangerous names: a pattern that uses `%u` never applies to an anonymous
//! client. When the user name or the client id contains `+`, `#` or `/`, **no pattern
//! applies** to that client (Mosquitto 1.x denied on `+#/`, 2.0 on `+#`; tern keeps `/`
//! because a user named `alice/x` would otherwise reach `home/alice/x/...` under
//! `pattern readwrite home/%u/#`, which belongs to `alice`). The client's own `topic` rules
//! still apply.
//!
//! `$`-topics: a filter starting with a wildcard never matches a topic starting with `$`
//! [MQTT-4.7.2-1], so `$SYS/#` is readable only when a rule names `$SYS` explicitly.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use tern_codec::topic::{self, TopicError};

/// What a client wants to do with a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Receive a message on the topic (checked for each delivery).
    Read,
    /// Publish to the topic (and set a will on it).
    Write,
}

/// The access word of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleAccess {
    /// `read`
    Read,
    /// `write`
    Write,
    /// `readwrite` (also the default when no word is given)
    ReadWrite,
    /// `deny`: refuses both, and wins over every grant.
    Deny,
}

impl RuleAccess {
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "readwrite" => Some(Self::ReadWrite),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }

    /// Does this rule grant `access`? (`Deny` grants nothing.)
    pub const fn grants(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Self::ReadWrite, _) | (Self::Read, Access::Read) | (Self::Write, Access::Write)
        )
    }
}

/// One `topic` or `pattern` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The access word.
    pub access: RuleAccess,
    /// The topic filter, validated (for patterns: with `%u`/`%c` still in it).
    pub filter: String,
    /// 1-based line in the ACL file, for logs.
    pub line: usize,
}

/// What is wrong with an ACL line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclErrorKind {
    /// An access word other than read, write, readwrite or deny.
    InvalidAccess(String),
    /// `user` with no name.
    MissingUsername,
    /// `topic` or `pattern` with nothing after it, or an access word with no filter.
    MissingTopic,
    /// The filter is not a valid MQTT topic filter.
    InvalidFilter {
        /// The filter as written.
        filter: String,
        /// Why it is invalid.
        reason: TopicError,
    },
    /// A line that does not start with `topic`, `pattern` or `user`.
    InvalidLine {
        /// The first word of the line.
        keyword: String,
        /// The closest keyword, when one is near.
        suggestion: Option<&'static str>,
    },
}

/// An ACL file error: displays as `FILE:LINE: <what is wrong>. <what to do>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}: {}", path.display(), line, Msg(kind))]
#[non_exhaustive]
pub struct AclError {
    /// The ACL file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: AclErrorKind,
}

struct Msg<'a>(&'a AclErrorKind);

impl fmt::Display for Msg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            AclErrorKind::InvalidAccess(word) => write!(
                f,
                "invalid topic access type \"{word}\". Use read, write, readwrite or deny"
            ),
            AclErrorKind::MissingUsername => {
                write!(
                    f,
                    "missing username after \"user\". Write it as \"user NAME\""
                )
            }
            AclErrorKind::MissingTopic => write!(
                f,
                "missing topic filter. Write it as \"topic [read|write|readwrite|deny] FILTER\""
            ),
            AclErrorKind::InvalidFilter { filter, reason } => write!(
                f,
                "invalid ACL topic \"{filter}\": {reason}. Fix the filter"
            ),
            AclErrorKind::InvalidLine {
                keyword,
                suggestion: Some(s),
            } => write!(
                f,
                "invalid line in acl_file: unknown keyword \"{keyword}\". Did you mean \"{s}\"?"
            ),
            AclErrorKind::InvalidLine {
                keyword,
                suggestion: None,
            } => write!(
                f,
                "invalid line in acl_file: unknown keyword \"{keyword}\". Lines start with topic, pattern or user; comments with #"
            ),
        }
    }
}

/// tern's answer to a SUBSCRIBE, decided from the filter alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscribeDecision {
    /// Every topic the filter can match is readable: grant, no per-message check needed.
    Allowed,
    /// Some topics are readable, some are not (or tern cannot prove either): grant the
    /// subscription and check each delivery with [`AclFile::check`] and [`Access::Read`].
    Narrowed,
    /// No topic the filter can match is readable: refuse (SUBACK 0x80 in MQTT 3.1.1,
    /// 0x87 Not authorized in MQTT 5.0).
    Denied,
}

/// A parsed ACL file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclFile {
    /// Rules before the first `user` line: for clients without a user name.
    pub anonymous: Vec<Rule>,
    /// Rules of each `user` section, merged per user name.
    pub users: HashMap<String, Vec<Rule>>,
    /// `pattern` rules, for every client.
    pub patterns: Vec<Rule>,
    /// Non-fatal remarks (`FILE:LINE: ...`), e.g. a pattern without `%u` or `%c`.
    pub warnings: Vec<String>,
}

const KEYWORDS: &[&str] = &["topic", "pattern", "user"];

fn blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl AclFile {
    /// Parses the contents of an ACL file; `path` is only used in messages. The first error
    /// stops parsing (Mosquitto refuses to start on a bad ACL file too).
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Result<Self, AclError> {
        let path = path.into();
        let mut acl = Self::default();
        let mut user: Option<String> = None;
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let err = |kind| AclError {
                path: path.clone(),
                line: line_no,
                kind,
            };
            let line = raw.trim_end().trim_start_matches(blank);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = match line.split_once(blank) {
                Some((k, r)) => (k, r.trim_start_matches(blank)),
                None => (line, ""),
            };
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(err(AclErrorKind::MissingUsername));
                    }
                    user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let (access, filter) = match rest.split_once(blank) {
                        Some((word, filter)) => {
                            let access = RuleAccess::from_word(word)
                                .ok_or_else(|| err(AclErrorKind::InvalidAccess(word.to_owned())))?;
                            (access, filter.trim_matches(blank))
                        }
                        None if RuleAccess::from_word(rest).is_some() => {
                            return Err(err(AclErrorKind::MissingTopic));
                        }
                        None => (RuleAccess::ReadWrite, rest),
                    };
                    if filter.is_empty() {
                        return Err(err(AclErrorKind::MissingTopic));
                    }
                    topic::validate_filter(filter).map_err(|reason| {
                        err(AclErrorKind::InvalidFilter {
                            filter: filter.to_owned(),
                            reason,
                        })
                    })?;
                    let rule = Rule {
                        access,
                        filter: filter.to_owned(),
                        line: line_no,
                    };
                    if keyword == "pattern" {
                        acl.check_pattern(&path, &rule);
                        acl.patterns.push(rule);
                    } else {
                        match &user {
                            Some(u) => acl.users.entry(u.clone()).or_default().push(rule),
                            None => acl.anonymous.push(rule),
                        }
                    }
                }
                other => {
                    return Err(err(AclErrorKind::InvalidLine {
                        keyword: other.chars().take(64).collect(),
                        suggestion: crate::suggest(other, KEYWORDS),
                    }));
                }
            }
        }
        Ok(acl)
    }

    fn check_pattern(&mut self, path: &std::path::Path, rule: &Rule) {
        let whole = rule.filter.split('/').any(|l| l == "%u" || l == "%c");
        let inside = rule
            .filter
            .split('/')
            .any(|l| l != "%u" && l != "%c" && (l.contains("%u") || l.contains("%c")));
        if inside {
            self.warnings.push(format!(
                "{}:{}: \"%u\" and \"%c\" are replaced only when they fill a whole topic level; in \"{}\" they are literal text",
                path.display(),
                rule.line,
                rule.filter
            ));
        } else if !whole {
            self.warnings.push(format!(
                "{}:{}: pattern \"{}\" contains neither %u nor %c; it applies to every client like a topic line would",
                path.display(),
                rule.line,
                rule.filter
            ));
        }
    }

    /// The rules that apply to this client, with patterns substituted.
    fn applicable<'a>(
        &'a self,
        username: Option<&str>,
        client_id: &str,
    ) -> impl Iterator<Item = (RuleAccess, Cow<'a, str>)> + 'a {
        let own: &'a [Rule] = match username {
            Some(u) => self.users.get(u).map(Vec::as_slice).unwrap_or_default(),
            None => &self.anonymous,
        };
        let dangerous = |s: &str| s.contains(['+', '#', '/']);
        let patterns_apply = !dangerous(client_id) && !username.is_some_and(dangerous);
        let username = username.map(str::to_owned);
        let client_id = client_id.to_owned();
        let patterns = self
            .patterns
            .iter()
            .filter(move |_| patterns_apply)
            .filter_map(move |rule| {
                substitute(&rule.filter, username.as_deref(), &client_id)
                    .map(|f| (rule.access, Cow::Owned(f)))
            });
        own.iter()
            .map(|r| (r.access, Cow::Borrowed(r.filter.as_str())))
            .chain(patterns)
    }

    /// May this client `access` the topic name `topic`? `username` is the MQTT user name (or
    /// the certificate identity when `use_identity_as_username` is set), `None` when
    /// anonymous. An invalid topic name is refused.
    pub fn check(
        &self,
        username: Option<&str>,
        client_id: &str,
        topic_name: &str,
        access: Access,
    ) -> bool {
        if topic::validate_name(topic_name).is_err() {
            return false;
        }
        let rules: Vec<_> = self.applicable(username, client_id).collect();
        if rules
            .iter()
            .any(|(a, f)| *a == RuleAccess::Deny && topic::matches(f, topic_name))
        {
            return false;
        }
        rules
            .iter()
            .any(|(a, f)| a.grants(access) && topic::matches(f, topic_name))
    }

    /// Decides a SUBSCRIBE to `filter` (a `$share/group/` prefix is ignored: the group does
    /// not change which topics are delivered).
    ///
    /// Rule, with *grants* = applicable rules granting read and *denies* = applicable deny
    /// rules:
    /// - [`SubscribeDecision::Allowed`] when one grant covers every topic the filter matches
    ///   and no deny overlaps the filter;
    /// - [`SubscribeDecision::Denied`] when, for every grant, the topics it shares with the
    ///   filter are all covered by one deny rule (in particular when no grant overlaps the
    ///   filter), or when the filter is invalid;
    /// - [`SubscribeDecision::Narrowed`] otherwise. Narrowed is always safe: each delivery
    ///   is still checked with [`AclFile::check`]. It is also the answer when only a union of
    ///   several grants (or denies) would settle the question.
    pub fn check_subscribe(
        &self,
        username: Option<&str>,
        client_id: &str,
        filter: &str,
    ) -> SubscribeDecision {
        if topic::validate_filter(filter).is_err() {
            return SubscribeDecision::Denied;
        }
        let filter = topic::split_shared(filter).map_or(filter, |(_, f)| f);
        let wanted = levels(filter);
        let rules: Vec<_> = self.applicable(username, client_id).collect();
        let denies: Vec<Vec<Level<'_>>> = rules
            .iter()
            .filter(|(a, _)| *a == RuleAccess::Deny)
            .map(|(_, f)| levels(f))
            .collect();
        let grants: Vec<Vec<Level<'_>>> = rules
            .iter()
            .filter(|(a, _)| a.grants(Access::Read))
            .map(|(_, f)| levels(f))
            .collect();
        if grants.iter().any(|g| covers(g, &wanted)) && !denies.iter().any(|d| overlaps(d, &wanted))
        {
            return SubscribeDecision::Allowed;
        }
        let nothing_readable = grants.iter().all(|g| match intersect(g, &wanted) {
            None => true,
            Some(shared) => denies.iter().any(|d| covers(d, &shared)),
        });
        if nothing_readable {
            SubscribeDecision::Denied
        } else {
            SubscribeDecision::Narrowed
        }
    }
}

/// Replaces whole `%u` / `%c` levels. `None` when the pattern needs a user name the client
/// does not have.
fn substitute(pattern: &str, username: Option<&str>, client_id: &str) -> Option<String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    for (i, level) in pattern.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match level {
            "%u" => out.push_str(username?),
            "%c" => out.push_str(client_id),
            other => out.push_str(other),
        }
    }
    Some(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level<'a> {
    Lit(&'a str),
    Plus,
    Hash,
}

fn levels(filter: &str) -> Vec<Level<'_>> {
    filter
        .split('/')
        .map(|l| match l {
            "+" => Level::Plus,
            "#" => Level::Hash,
            other => Level::Lit(other),
        })
        .collect()
}

fn is_dollar(level: Option<&Level<'_>>) -> bool {
    matches!(level, Some(Level::Lit(l)) if l.starts_with('$'))
}

fn is_wild(level: Option<&Level<'_>>) -> bool {
    matches!(level, Some(Level::Plus | Level::Hash))
}

/// Does `outer` match every topic `inner` matches?
fn covers(outer: &[Level<'_>], inner: &[Level<'_>]) -> bool {
    // [MQTT-4.7.2-1]: a wildcard first level never matches `$` topics.
    if is_wild(outer.first()) && is_dollar(inner.first()) {
        return false;
    }
    let mut i = 0;
    loop {
        match (outer.get(i), inner.get(i)) {
            (Some(Level::Hash), _) => return true,
            (None, None) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some(Level::Plus), Some(Level::Lit(_) | Level::Plus)) => {}
            (Some(Level::Lit(a)), Some(Level::Lit(b))) if a == b => {}
            _ => return false,
        }
        i += 1;
    }
}

/// The filter matching exactly the topics both filters match, or `None` if there are none.
fn intersect<'a>(a: &[Level<'a>], b: &[Level<'a>]) -> Option<Vec<Level<'a>>> {
    if (is_wild(a.first()) && is_dollar(b.first())) || (is_wild(b.first()) && is_dollar(a.first()))
    {
        return None;
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (Some(Level::Hash), _) => {
                out.extend_from_slice(b.get(i..).unwrap_or_default());
                return Some(out);
            }
            (_, Some(Level::Hash)) => {
                out.extend_from_slice(a.get(i..).unwrap_or_default());
                return Some(out);
            }
            (None, None) => return Some(out),
            (None, Some(_)) | (Some(_), None) => return None,
            (Some(Level::Plus), Some(Level::Plus)) => out.push(Level::Plus),
            (Some(Level::Plus), Some(l @ Level::Lit(_)))
            | (Some(l @ Level::Lit(_)), Some(Level::Plus)) => out.push(*l),
            (Some(Level::Lit(x)), Some(Level::Lit(y))) if x == y => out.push(Level::Lit(x)),
            _ => return None,
        }
        i += 1;
    }
}

fn overlaps(a: &[Level<'_>], b: &[Level<'_>]) -> bool {
    intersect(a, b).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Access::{Read, Write};
    use SubscribeDecision::{Allowed, Denied, Narrowed};

    const REFERENCE: &str = "\
# topic lines before the first \"user\" line apply to anonymous clients
topic read $SYS/#
user alice
topic readwrite home/alice/#
topic deny home/alice/secret
pattern write sensor/%u/data
pattern write $SYS/broker/connection/%c/state
";

    fn acl(text: &str) -> AclFile {
        AclFile::parse("/etc/tern/acl", text).unwrap()
    }

    fn err(text: &str) -> String {
        AclFile::parse("/etc/tern/acl", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reference_example() {
        let a = acl(REFERENCE);
        // anonymous: only $SYS read
        assert!(a.check(None, "c1", "$SYS/broker/uptime", Read));
        assert!(!a.check(None, "c1", "$SYS/broker/uptime", Write));
        assert!(!a.check(None, "c1", "home/alice/x", Read));
        // alice
        assert!(a.check(Some("alice"), "c", "home/alice/lamp", Read));
        assert!(a.check(Some("alice"), "c", "home/alice/lamp", Write));
        assert!(a.check(Some("alice"), "c", "home/alice", Write));
        assert!(!a.check(Some("alice"), "c", "home/alice/secret", Read));
        assert!(!a.check(Some("alice"), "c", "home/alice/secret", Write));
        assert!(!a.check(Some("alice"), "c", "$SYS/broker/uptime", Read));
        // patterns: all users
        assert!(a.check(Some("bob"), "c", "sensor/bob/data", Write));
        assert!(!a.check(Some("bob"), "c", "sensor/bob/data", Read));
        assert!(!a.check(Some("bob"), "c", "sensor/alice/data", Write));
        assert!(a.check(
            Some("bob"),
            "dev7",
            "$SYS/broker/connection/dev7/state",
            Write
        ));
        assert!(a.check(None, "dev7", "$SYS/broker/connection/dev7/state", Write));
        // a %u pattern never matches an anonymous client
        assert!(!a.check(None, "c", "sensor//data", Write));
        assert!(!a.check(None, "c", "sensor/%u/data", Write));
    }

    /// Debian's /usr/share/doc/mosquitto/examples/aclfile.example (without its long
    /// comment block).
    #[test]
    fn debian_example_acl_file() {
        let a = acl(
            "# This affects access control for clients with no username.\ntopic read $SYS/#\n\n\
            # This only affects clients with username \"roger\".\nuser roger\ntopic foo/bar\n\n\
            # This affects all clients.\npattern write $SYS/broker/connection/%c/state\n",
        );
        assert!(a.check(None, "c", "$SYS/broker/load", Read));
        assert!(a.check(Some("roger"), "c", "foo/bar", Write));
        assert!(a.check(Some("roger"), "c", "foo/bar", Read));
        assert!(!a.check(Some("roger"), "c", "$SYS/broker/load", Read));
        assert!(a.check(
            Some("roger"),
            "br1",
            "$SYS/broker/connection/br1/state",
            Write
        ));
        assert!(a.warnings.is_empty());
    }

    #[test]
    fn nothing_is_allowed_without_a_grant_and_empty_file_denies_all() {
        let a = acl("");
        assert!(!a.check(None, "c", "a", Read));
        assert!(!a.check(Some("u"), "c", "a", Write));
        assert_eq!(a.check_subscribe(Some("u"), "c", "#"), Denied);
    }

    #[test]
    fn deny_wins_over_grants_in_any_order_including_patterns() {
        let a = acl(
            "topic deny a/b\ntopic a/#\nuser u\ntopic readwrite #\npattern deny private/%u/#\n",
        );
        assert!(!a.check(None, "c", "a/b", Read));
        assert!(a.check(None, "c", "a/c", Read));
        assert!(a.check(Some("u"), "c", "x/y", Write));
        // Mosquitto would let the user's "#" grant win here; tern's deny wins.
        assert!(!a.check(Some("u"), "c", "private/u/diary", Read));
        assert!(a.check(Some("u"), "c", "private/v/diary", Read));
    }

    #[test]
    fn sys_topics_readable_only_when_named() {
        let a = acl("topic read #\ntopic read +/broker/#\n");
        assert!(!a.check(None, "c", "$SYS/broker/uptime", Read));
        assert!(a.check(None, "c", "a/b", Read));
        let a = acl("topic read $SYS/broker/#\n");
        assert!(a.check(None, "c", "$SYS/broker/uptime", Read));
    }

    #[test]
    fn patterns_substitute_whole_levels_only() {
        let a = acl("pattern readwrite dev/%c/#\npattern readwrite x%c/%u\n");
        assert!(a.check(Some("u"), "d1", "dev/d1/temp", Write));
        assert!(a.check(None, "d1", "dev/d1", Read));
        assert!(!a.check(Some("u"), "d1", "dev/d2/temp", Write));
        assert!(!a.check(Some("u"), "d1", "xd1/u", Write));
        assert!(a.check(Some("u"), "d1", "x%c/u", Write));
        assert_eq!(
            a.warnings,
            [
                "/etc/tern/acl:2: \"%u\" and \"%c\" are replaced only when they fill a whole topic level; in \"x%c/%u\" they are literal text"
            ]
        );
    }

    #[test]
    fn dangerous_names_do_not_widen_patterns() {
        let a = acl(
            "pattern readwrite home/%u/#\npattern readwrite dev/%c\nuser a+b\ntopic read own/#\n",
        );
        for user in ["+", "#", "alice/x", "a+b"] {
            assert!(!a.check(Some(user), "c", "home/alice/x/y", Read), "{user}");
            assert!(
                !a.check(Some(user), "c", &format!("home/{user}"), Read),
                "{user}"
            );
            assert!(!a.check(Some(user), "c", "dev/c", Read), "{user}");
        }
        assert!(a.check(Some("alice"), "c", "home/alice/x/y", Read));
        for id in ["+", "#", "a/b"] {
            assert!(!a.check(Some("alice"), id, "home/alice/x", Read), "{id}");
        }
        // the user's own topic rules still apply
        assert!(a.check(Some("a+b"), "c", "own/1", Read));
    }

    #[test]
    fn user_sections_merge_and_names_may_contain_spaces() {
        let a = acl("user bob smith\ntopic a\nuser x\ntopic b\nuser bob smith\ntopic read c d\n");
        assert!(a.check(Some("bob smith"), "c", "a", Write));
        assert!(a.check(Some("bob smith"), "c", "c d", Read));
        assert!(!a.check(Some("bob smith"), "c", "c d", Write));
        assert!(!a.check(Some("bob smith"), "c", "b", Read));
        assert!(!a.check(Some("bob"), "c", "a", Read));
    }

    #[test]
    fn access_words() {
        let a = acl("topic read r\ntopic write w\ntopic readwrite rw\ntopic d\n");
        assert!(a.check(None, "c", "r", Read) && !a.check(None, "c", "r", Write));
        assert!(a.check(None, "c", "w", Write) && !a.check(None, "c", "w", Read));
        assert!(a.check(None, "c", "rw", Write) && a.check(None, "c", "rw", Read));
        assert!(a.check(None, "c", "d", Write) && a.check(None, "c", "d", Read));
    }

    #[test]
    fn invalid_topic_names_are_refused() {
        let a = acl("topic #\n");
        assert!(!a.check(None, "c", "a/+", Write));
        assert!(!a.check(None, "c", "", Read));
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            err("topic rw a/b\n"),
            "/etc/tern/acl:1: invalid topic access type \"rw\". Use read, write, readwrite or deny"
        );
        assert_eq!(
            err("# c\nuser\n"),
            "/etc/tern/acl:2: missing username after \"user\". Write it as \"user NAME\""
        );
        assert_eq!(
            err("user   \n"),
            "/etc/tern/acl:1: missing username after \"user\". Write it as \"user NAME\""
        );
        assert_eq!(
            err("topic\n"),
            "/etc/tern/acl:1: missing topic filter. Write it as \"topic [read|write|readwrite|deny] FILTER\""
        );
        assert_eq!(
            err("topic deny\n"),
            "/etc/tern/acl:1: missing topic filter. Write it as \"topic [read|write|readwrite|deny] FILTER\""
        );
        assert_eq!(
            err("topic read a/#/b\n"),
            "/etc/tern/acl:1: invalid ACL topic \"a/#/b\": '#' must be the last level of a topic filter and stand alone in it. Fix the filter"
        );
        assert_eq!(
            err("pattern read a+\n"),
            "/etc/tern/acl:1: invalid ACL topic \"a+\": '+' must stand alone in its topic level. Fix the filter"
        );
        assert_eq!(
            err("topc read a\n"),
            "/etc/tern/acl:1: invalid line in acl_file: unknown keyword \"topc\". Did you mean \"topic\"?"
        );
        assert_eq!(
            err("allow all\n"),
            "/etc/tern/acl:1: invalid line in acl_file: unknown keyword \"allow\". Lines start with topic, pattern or user; comments with #"
        );
    }

    #[test]
    fn whitespace_tabs_and_crlf() {
        let a = acl("  topic\tread\t a/b  \r\n\t# comment\n\n");
        assert!(a.check(None, "c", "a/b", Read));
        assert_eq!(a.anonymous.len(), 1);
    }

    #[test]
    fn subscribe_allowed_narrowed_denied() {
        let a = acl(
            "user u\ntopic read a/#\ntopic deny a/secret/#\ntopic read b/+/c\ntopic write w/#\ntopic read $SYS/broker/#\n",
        );
        let s = |f| a.check_subscribe(Some("u"), "c", f);
        assert_eq!(s("b/x/c"), Allowed);
        assert_eq!(s("b/+/c"), Allowed);
        assert_eq!(s("a/public/#"), Allowed);
        assert_eq!(s("a/#"), Narrowed); // a/secret is denied inside it
        assert_eq!(s("a/+"), Narrowed); // a/secret matches a/+
        assert_eq!(s("#"), Narrowed); // a/..., b/x/c readable; others not
        assert_eq!(s("+/+/c"), Narrowed);
        assert_eq!(s("a/secret/#"), Denied);
        assert_eq!(s("a/secret/x"), Denied);
        assert_eq!(s("w/#"), Denied); // write-only
        assert_eq!(s("z/#"), Denied);
        assert_eq!(s("b/x"), Denied);
        assert_eq!(s("$SYS/broker/load/#"), Allowed);
        assert_eq!(s("$SYS/#"), Narrowed);
        assert_eq!(s("$share/g/b/+/c"), Allowed);
        assert_eq!(s("$share/g/z"), Denied);
        assert_eq!(s("a/#/x"), Denied);
    }

    #[test]
    fn subscribe_dollar_topics_not_covered_by_wildcards() {
        let a = acl("topic read #\n");
        assert_eq!(a.check_subscribe(None, "c", "#"), Allowed);
        assert_eq!(a.check_subscribe(None, "c", "a/+/b"), Allowed);
        assert_eq!(a.check_subscribe(None, "c", "$SYS/#"), Denied);
        assert_eq!(a.check_subscribe(None, "c", "$SYS/broker"), Denied);
        let a = acl("topic read +/x\n");
        assert_eq!(a.check_subscribe(None, "c", "$SYS/x"), Denied);
    }

    #[test]
    fn subscribe_parent_level_of_hash() {
        // "a/#" also matches "a" [MQTT-4.7.1-2].
        let a = acl("topic read a\n");
        assert_eq!(a.check_subscribe(None, "c", "a/#"), Narrowed);
        assert_eq!(a.check_subscribe(None, "c", "a"), Allowed);
        let a = acl("topic read a/#\ntopic deny a\n");
        assert_eq!(a.check_subscribe(None, "c", "a/#"), Narrowed);
        assert_eq!(a.check_subscribe(None, "c", "a"), Denied);
        assert!(!a.check(None, "c", "a", Read));
        assert!(a.check(None, "c", "a/b", Read));
    }

    #[test]
    fn subscribe_with_patterns_and_anonymous() {
        let a = acl("topic read public/#\npattern read users/%u/#\npattern read devices/%c/#\n");
        assert_eq!(a.check_subscribe(Some("bob"), "d1", "users/bob/#"), Allowed);
        assert_eq!(
            a.check_subscribe(Some("bob"), "d1", "users/+/inbox"),
            Narrowed
        );
        assert_eq!(a.check_subscribe(Some("bob"), "d1", "users/amy/#"), Denied);
        assert_eq!(a.check_subscribe(None, "d1", "users/+/#"), Denied);
        assert_eq!(a.check_subscribe(None, "d1", "devices/d1/#"), Allowed);
        assert_eq!(a.check_subscribe(None, "d1", "public/#"), Allowed);
        // "public/#" is in the anonymous section only
        assert_eq!(a.check_subscribe(Some("bob"), "d1", "public/#"), Denied);
        assert_eq!(a.check_subscribe(Some("b/x"), "d1", "users/b/x/#"), Denied);
    }

    /// The subscribe decision must agree with per-topic checks on sample topics.
    #[test]
    fn subscribe_decision_is_consistent_with_check() {
        let a = acl(
            "topic read a/#\ntopic deny a/b/#\ntopic read +/c\ntopic deny x/c\ntopic read $SYS/q\ntopic write w\n",
        );
        let topics = [
            "a", "a/b", "a/b/c", "a/c", "a/x/y", "x/c", "y/c", "c", "w", "$SYS/q", "$SYS/c", "z",
            "a/c/d", "/c",
        ];
        let filters = [
            "#", "a/#", "a/+", "+/c", "a/b/#", "x/c", "y/+", "+/+", "w", "$SYS/#", "+", "a/b",
            "+/#", "/#", "a/c/#",
        ];
        for f in filters {
            let readable: Vec<bool> = topics
                .iter()
                .filter(|t| topic::matches(f, t))
                .map(|t| a.check(None, "c", t, Read))
                .collect();
            match a.check_subscribe(None, "c", f) {
                Allowed => assert!(readable.iter().all(|r| *r), "{f}"),
                Denied => assert!(readable.iter().all(|r| !*r), "{f}"),
                Narrowed => {}
            }
        }
    }

    #[test]
    fn covers_and_intersect_helpers() {
        let c = |a: &str, b: &str| covers(&levels(a), &levels(b));
        assert!(c("#", "a/b"));
        assert!(c("a/#", "a"));
        assert!(c("a/#", "a/+/#"));
        assert!(!c("a/+/#", "a/#"));
        assert!(!c("a/+", "a/#"));
        assert!(!c("a", "a/#"));
        assert!(!c("#", "$SYS/#"));
        assert!(c("$SYS/#", "$SYS/a"));
        fn i<'a>(a: &'a str, b: &'a str) -> Option<Vec<Level<'a>>> {
            intersect(&levels(a), &levels(b))
        }
        assert_eq!(i("a/+", "+/b"), Some(levels("a/b")));
        assert_eq!(i("a/#", "a"), Some(levels("a")));
        assert_eq!(i("#", "$SYS/x"), None);
        assert_eq!(i("a/b", "a/c"), None);
        assert_eq!(i("a/+/#", "+/b"), Some(levels("a/b")));
        assert_eq!(i("a/+", "a"), None);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*") {
            let _ = AclFile::parse("/a", &text);
        }

        #[test]
        fn parse_and_check_never_panic_on_acl_like_input(
            lines in proptest::collection::vec(
                "(topic|pattern|user|# x|) ?(read|write|readwrite|deny|) ?[a-z%cu+#/$ ]{0,12}", 0..8),
            user in proptest::option::of("[a-z+#/]{0,4}"),
            client in "[a-z+#/]{0,4}",
            name in "[a-z+#/$]{0,8}",
        ) {
            if let Ok(a) = AclFile::parse("/a", &lines.join("\n")) {
                let _ = a.check(user.as_deref(), &client, &name, Read);
                let _ = a.check_subscribe(user.as_deref(), &client, &name);
            }
        }
    }
}
