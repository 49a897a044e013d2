//! Mosquitto's security files as the broker core's hooks: the password file as an
//! [`Authenticator`], the ACL file as an [`Authorizer`].

use tern_broker_core::{AuthResult, Authenticator, Authorizer, Identity, SubscribeDecision};
use tern_conf::acl::{Access, AclFile, SubscribeDecision as AclDecision};
use tern_conf::passwd::PasswordFile;

/// `password_file`: verification in constant time; unknown users cost the same time as
/// known ones (tern-conf hashes a dummy).
#[derive(Debug)]
pub struct Passwords(pub PasswordFile);

impl Authenticator for Passwords {
    fn authenticate(&self, username: &str, password: Option<&[u8]>) -> AuthResult {
        // Mosquitto refuses a user with no password when a password file is in use.
        match password {
            Some(p) if self.0.verify(username, p) => AuthResult::Allowed,
            _ => AuthResult::BadCredentials,
        }
    }

    fn user_exists(&self, username: &str) -> bool {
        self.0.get(username).is_some()
    }
}

/// `acl_file`.
#[derive(Debug)]
pub struct Acl(pub AclFile);

impl Authorizer for Acl {
    fn can_write(&self, who: Identity<'_>, topic: &str) -> bool {
        self.0
            .check(who.username, who.client_id, topic, Access::Write)
    }
    fn can_read(&self, who: Identity<'_>, topic: &str) -> bool {
        self.0
            .check(who.username, who.client_id, topic, Access::Read)
    }
    fn check_subscribe(&self, who: Identity<'_>, filter: &str) -> SubscribeDecision {
        match self.0.check_subscribe(who.username, who.client_id, filter) {
            AclDecision::Allowed => SubscribeDecision::Allowed,
            AclDecision::Narrowed => SubscribeDecision::Narrowed,
            AclDecision::Denied => SubscribeDecision::Denied,
        }
    }
}
