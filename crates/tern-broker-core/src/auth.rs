//! The authorisation hook: the broker core asks it before accepting a PUBLISH (including
//! wills and retained messages), granting a subscription, and delivering a message. Decisions
//! come from an ACL file (tern-conf) or anything else implementing [`Authorizer`].

/// The answer for a subscription request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeDecision {
    /// Everything the filter can match may be read.
    Allowed,
    /// Granted, but each delivery is checked with [`Authorizer::can_read`].
    Narrowed,
    /// Refused: SUBACK 0x80 (3.1.1) / 0x87 (5.0).
    Denied,
}

/// Who is asking.
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    pub username: Option<&'a str>,
    pub client_id: &'a str,
}

/// Access decisions. Implementations must be fast: they run under the broker lock.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// May this client publish to `topic`?
    fn can_write(&self, who: Identity<'_>, topic: &str) -> bool;
    /// May this client receive a message on `topic`?
    fn can_read(&self, who: Identity<'_>, topic: &str) -> bool;
    /// May this client subscribe to `filter` (without `$share/group/`)?
    fn check_subscribe(&self, who: Identity<'_>, filter: &str) -> SubscribeDecision;
}

/// Allows everything (no `acl_file`).
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn can_write(&self, _: Identity<'_>, _: &str) -> bool {
        true
    }
    fn can_read(&self, _: Identity<'_>, _: &str) -> bool {
        true
    }
    fn check_subscribe(&self, _: Identity<'_>, _: &str) -> SubscribeDecision {
        SubscribeDecision::Allowed
    }
}

/// The result of checking a user name and password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// Known user, right password.
    Allowed,
    /// Unknown user or wrong password (CONNACK 0x86 / 3.1.1 code 4).
    BadCredentials,
}

/// Checks user names and passwords (a password file, or anything else).
/// Implementations must compare secrets in constant time.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    fn authenticate(&self, username: &str, password: Option<&[u8]>) -> AuthResult;
    /// True while the user is known (checked for connected clients after a reload).
    fn user_exists(&self, username: &str) -> bool;
}
