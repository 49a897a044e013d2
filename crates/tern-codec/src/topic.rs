//! Topic names and topic filters: validation and matching (MQTT 3.1.1 section 4.7,
//! MQTT 5.0 section 4.7 and 4.8.2). Owns the rules for `+`, `#`, `$`-topics and
//! `$share/{ShareName}/{filter}`. Must not allocate: every function works on borrowed `&str`.

/// Why a topic name or filter was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// [MQTT-4.7.3-1] topic names and filters must be at least one character long.
    #[error("topic is empty")]
    Empty,
    /// [MQTT-3.3.2-2] a PUBLISH topic name must not contain wildcards.
    #[error("topic name contains a wildcard ('+' or '#')")]
    WildcardInName,
    /// [MQTT-4.7.1-2] `#` must be the last character and occupy a whole level.
    #[error("'#' must be the last level of a topic filter and stand alone in it")]
    BadMultiLevelWildcard,
    /// [MQTT-4.7.1-3] `+` must occupy a whole level.
    #[error("'+' must stand alone in its topic level")]
    BadSingleLevelWildcard,
    /// [MQTT-4.8.2-1], [MQTT-4.8.2-2] `$share/{ShareName}/{filter}` shape.
    #[error(
        "shared subscription must be '$share/<group>/<filter>' with a group name without '/', '+' or '#'"
    )]
    BadSharedSubscription,
    /// Longer than the 65,535 bytes a UTF-8 string can hold [MQTT-1.5.4-1].
    #[error("topic is longer than 65535 bytes")]
    TooLong,
    /// [MQTT-1.5.4-2] U+0000 is not allowed.
    #[error("topic contains the null character U+0000")]
    NullChar,
}

const MAX_LEN: usize = 65_535;

fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_LEN {
        return Err(TopicError::TooLong);
    }
    if s.as_bytes().contains(&0) {
        return Err(TopicError::NullChar);
    }
    Ok(())
}

/// Validates a topic name as carried by PUBLISH (and a will topic).
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    check_common(name)?;
    if name.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::WildcardInName);
    }
    Ok(())
}

/// Validates a topic filter as carried by SUBSCRIBE / UNSUBSCRIBE, including the
/// `$share/{ShareName}/{filter}` form.
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    if let Some(rest) = filter.strip_prefix("$share/") {
        let (group, inner) = rest
            .split_once('/')
            .ok_or(TopicError::BadSharedSubscription)?;
        if group.is_empty() || group.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(TopicError::BadSharedSubscription);
        }
        if inner.is_empty() || inner == "$share" || inner.starts_with("$share/") {
            // A shared subscription's filter cannot itself be a shared subscription.
            return Err(TopicError::BadSharedSubscription);
        }
        return validate_plain_filter(inner);
    }
    validate_plain_filter(filter)
}

fn validate_plain_filter(filter: &str) -> Result<(), TopicError> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') {
            if level != "#" || levels.peek().is_some() {
                return Err(TopicError::BadMultiLevelWildcard);
            }
        } else if level.contains('+') && level != "+" {
            return Err(TopicError::BadSingleLevelWildcard);
        }
    }
    Ok(())
}

/// A shared subscription split into its group and the filter it applies
/// (`$share/group/a/b` gives `Some(("group", "a/b"))`). `None` for an ordinary filter.
pub fn split_shared(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

/// True when `filter` has a wildcard level.
pub fn has_wildcard(filter: &str) -> bool {
    filter.bytes().any(|b| b == b'+' || b == b'#')
}

/// Does the (valid, non-shared) `filter` match the (valid) topic `name`?
///
/// [MQTT-4.7.2-1] a filter starting with a wildcard does not match a name starting with `$`.
/// `a/#` matches `a` as well as everything below it [MQTT-4.7.1-2].
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(nl)) if fl == nl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_mqtt_4_7_3_1_and_3_3_2_2() {
        assert_eq!(validate_name(""), Err(TopicError::Empty));
        assert_eq!(validate_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a/#"), Err(TopicError::WildcardInName));
        assert_eq!(validate_name("a\0b"), Err(TopicError::NullChar));
        assert_eq!(validate_name("/"), Ok(()));
        assert_eq!(validate_name("$SYS/broker"), Ok(()));
    }

    #[test]
    fn filters_mqtt_4_7_1_2_and_4_7_1_3() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/+",
            "sport/tennis/#",
            "$share/g/a/#",
            "$share/g/#",
        ] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            validate_filter("a/#/b"),
            Err(TopicError::BadMultiLevelWildcard)
        );
        assert_eq!(
            validate_filter("a#"),
            Err(TopicError::BadMultiLevelWildcard)
        );
        assert_eq!(
            validate_filter("a+"),
            Err(TopicError::BadSingleLevelWildcard)
        );
        assert_eq!(
            validate_filter("a/b+/c"),
            Err(TopicError::BadSingleLevelWildcard)
        );
        assert_eq!(validate_filter(""), Err(TopicError::Empty));
        assert_eq!(
            validate_filter("$share/g"),
            Err(TopicError::BadSharedSubscription)
        );
        assert_eq!(
            validate_filter("$share//a"),
            Err(TopicError::BadSharedSubscription)
        );
        assert_eq!(
            validate_filter("$share/g+/a"),
            Err(TopicError::BadSharedSubscription)
        );
        assert_eq!(
            validate_filter("$share/g/"),
            Err(TopicError::BadSharedSubscription)
        );
    }

    #[test]
    fn matching_spec_examples_4_7_1() {
        // Non-normative examples from section 4.7.1.2 and 4.7.1.3.
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking"
        ));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon"
        ));
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("#", "a/b/c"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
    }

    #[test]
    fn dollar_topics_mqtt_4_7_2_1() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/broker/uptime", "$SYS/broker/uptime"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
        assert!(matches("$SYS/+/uptime", "$SYS/broker/uptime"));
    }

    #[test]
    fn shared_split() {
        assert_eq!(split_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(split_shared("a/b"), None);
    }
}
