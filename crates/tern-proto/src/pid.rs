//! Packet identifier allocation [MQTT-2.2.1-2]..[MQTT-2.2.1-4]: a new identifier for each
//! QoS > 0 PUBLISH, SUBSCRIBE and UNSUBSCRIBE, never one still in use.

use tern_codec::PacketId;

/// Hands out packet identifiers in order, skipping those the caller says are in use.
#[derive(Clone, Copy, Debug)]
pub struct PacketIds {
    next: PacketId,
}

impl Default for PacketIds {
    fn default() -> Self {
        Self {
            next: PacketId::MIN,
        }
    }
}

impl PacketIds {
    /// Starts after `last` (used when a session is restored).
    pub fn starting_after(last: PacketId) -> Self {
        Self { next: last.next() }
    }

    /// The identifier handed out last (for persisting a session).
    pub fn last(&self) -> Option<PacketId> {
        PacketId::new(self.next.get().wrapping_sub(1)).or(PacketId::new(u16::MAX))
    }

    /// The next identifier for which `in_use` is false, or `None` when all 65,535 are taken.
    pub fn allocate(&mut self, mut in_use: impl FnMut(PacketId) -> bool) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            let id = self.next;
            self.next = id.next();
            if !in_use(id) {
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_ids_in_use_and_wraps() {
        let mut p = PacketIds::starting_after(PacketId::new(65_534).unwrap());
        assert_eq!(p.allocate(|_| false).unwrap().get(), 65_535);
        assert_eq!(p.allocate(|id| id.get() == 1).unwrap().get(), 2);
        assert_eq!(p.allocate(|_| true), None);
    }
}
