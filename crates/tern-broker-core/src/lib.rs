//! tern-broker-core: everything a broker decides, without I/O. Sessions, the subscription
//! tree, retained messages, wills and expiry, authorisation decisions and the router live
//! here; sockets, TLS, clocks and files live in tern-broker. Time is always an argument.

pub mod auth;
pub mod broker;
pub mod config;

/// Hash maps keyed by client ids, topic levels and connection ids: aHash with a random seed
/// per process (fast, and not open to hash-flooding with chosen topic names as a fixed hash
/// would be).
pub type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
/// The set counterpart of [`Map`].
pub type Set<K> = std::collections::HashSet<K, ahash::RandomState>;

pub mod message;
pub mod out;
pub mod persist;
pub mod retained;
pub mod session;
pub mod stats;
pub mod trie;

pub use auth::{AllowAll, AuthResult, Authenticator, Authorizer, Identity, SubscribeDecision};
pub use broker::{Accepted, Broker, ConnectRequest, Drain, Flow, ListenerLimits};
pub use config::CoreConfig;
pub use message::{Message, MsgRef};
pub use out::{Close, ConnackInfo, Delivery, Out};
pub use persist::{
    ItemState, MemStore, QueueLoader, Restored, SessionRecord, StoreOp, StoredItem, StoredQueue,
};
pub use session::{ConnId, SubIds};
pub use stats::Stats;
