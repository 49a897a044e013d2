//! SUBSCRIBE and UNSUBSCRIBE (sections 3.8 and 3.10): a packet identifier, properties and a
//! non-empty list of topic filters, each validated by the rules of section 4.7.

use crate::error::{DecodeError, EncodeError};
use crate::properties::{Properties, PropertyContext};
use crate::topic;
use crate::types::{PacketId, ProtocolVersion, SubscriptionOptions};
use crate::wire::{Reader, Sink};

/// The topic filters of a SUBSCRIBE: a validated block from the decoder, or a caller's list.
#[derive(Clone, Copy, Debug)]
pub enum SubscribeFilters<'a> {
    /// Validated payload bytes and the version needed to read the options bytes.
    Block(&'a [u8], ProtocolVersion),
    List(&'a [(&'a str, SubscriptionOptions)]),
}

impl<'a> SubscribeFilters<'a> {
    /// `(filter, options)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, SubscriptionOptions)> + 'a {
        let (block, v, list): (&'a [u8], _, &'a [(&'a str, SubscriptionOptions)]) = match *self {
            Self::Block(b, v) => (b, v, &[]),
            Self::List(l) => (&[], ProtocolVersion::V5, l),
        };
        let mut r = Reader::new(block);
        core::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            let f = r.str("topic filter").ok()?;
            let o = SubscriptionOptions::decode(r.u8("subscription options").ok()?, v).ok()?;
            Some((f, o))
        })
        .chain(list.iter().copied())
    }

    /// Number of filters.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are none (never after decoding).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for SubscribeFilters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// SUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Subscribe<'a> {
    pub packet_id: PacketId,
    pub properties: Properties<'a>,
    pub filters: SubscribeFilters<'a>,
}

impl<'a> Subscribe<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = PacketId::decode(r.u16("packet identifier")?, "SUBSCRIBE")?;
        let properties = if v.is_v5() {
            Properties::decode(r, PropertyContext::Subscribe)?
        } else {
            Properties::default()
        };
        let block = r.rest();
        let mut br = Reader::new(block);
        if br.is_empty() {
            // [MQTT-3.8.3-3] at least one topic filter.
            return Err(DecodeError::NoTopicFilter {
                packet: "SUBSCRIBE",
            });
        }
        while !br.is_empty() {
            let f = br.str("topic filter")?;
            topic::validate_filter(f).map_err(DecodeError::BadTopicFilter)?;
            let o = SubscriptionOptions::decode(br.u8("subscription options")?, v)?;
            if o.no_local && topic::split_shared(f).is_some() {
                // 5.0 section 3.8.3.1: no-local on a shared subscription is a protocol error.
                return Err(DecodeError::BadSubscriptionOptions(
                    "no-local on a shared subscription",
                ));
            }
        }
        Ok(Self {
            packet_id,
            properties,
            filters: SubscribeFilters::Block(block, v),
        })
    }

    pub(crate) fn write_body<S: Sink>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u16(self.packet_id.get())?;
        if v.is_v5() {
            self.properties.encode(s)?;
        }
        let mut any = false;
        for (f, o) in self.filters.iter() {
            s.put_str(f, "topic filter")?;
            s.put_u8(o.encode(v))?;
            any = true;
        }
        if !any {
            return Err(EncodeError::Invalid(
                "SUBSCRIBE needs at least one topic filter",
            ));
        }
        Ok(())
    }
}

/// The topic filters of an UNSUBSCRIBE.
#[derive(Clone, Copy, Debug)]
pub enum UnsubscribeFilters<'a> {
    Block(&'a [u8]),
    List(&'a [&'a str]),
}

impl<'a> UnsubscribeFilters<'a> {
    /// The filters in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (block, list): (&'a [u8], &'a [&'a str]) = match *self {
            Self::Block(b) => (b, &[]),
            Self::List(l) => (&[], l),
        };
        let mut r = Reader::new(block);
        core::iter::from_fn(move || {
            if r.is_empty() {
                None
            } else {
                r.str("topic filter").ok()
            }
        })
        .chain(list.iter().copied())
    }

    /// Number of filters.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True when there are none (never after decoding).
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for UnsubscribeFilters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// UNSUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unsubscribe<'a> {
    pub packet_id: PacketId,
    pub properties: Properties<'a>,
    pub filters: UnsubscribeFilters<'a>,
}

impl<'a> Unsubscribe<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = PacketId::decode(r.u16("packet identifier")?, "UNSUBSCRIBE")?;
        let properties = if v.is_v5() {
            Properties::decode(r, PropertyContext::Unsubscribe)?
        } else {
            Properties::default()
        };
        let block = r.rest();
        let mut br = Reader::new(block);
        if br.is_empty() {
            // [MQTT-3.10.3-2] at least one topic filter.
            return Err(DecodeError::NoTopicFilter {
                packet: "UNSUBSCRIBE",
            });
        }
        while !br.is_empty() {
            let f = br.str("topic filter")?;
            topic::validate_filter(f).map_err(DecodeError::BadTopicFilter)?;
        }
        Ok(Self {
            packet_id,
            properties,
            filters: UnsubscribeFilters::Block(block),
        })
    }

    pub(crate) fn write_body<S: Sink>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u16(self.packet_id.get())?;
        if v.is_v5() {
            self.properties.encode(s)?;
        }
        let mut any = false;
        for f in self.filters.iter() {
            s.put_str(f, "topic filter")?;
            any = true;
        }
        if !any {
            return Err(EncodeError::Invalid(
                "UNSUBSCRIBE needs at least one topic filter",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use crate::packet::test_util::{dec, enc};
    use crate::types::{QoS, RetainHandling};
    use ProtocolVersion::*;

    /// MQTT 3.1.1 section 3.8.3, figure 3.22: "a/b" QoS 1 and "c/d" QoS 2, packet id 10.
    const FIG_3_22: &[u8] = &[
        0x82, 14, // SUBSCRIBE, remaining length 14
        0, 10, // packet identifier 10
        0, 3, b'a', b'/', b'b', 0x01, // "a/b" requested QoS 1
        0, 3, b'c', b'/', b'd', 0x02, // "c/d" requested QoS 2
    ];

    #[test]
    fn spec_example_figure_3_22() {
        let Packet::Subscribe(s) = dec(FIG_3_22, V311).unwrap() else {
            panic!()
        };
        let v: [(&str, SubscriptionOptions); 2] = [
            ("a/b", SubscriptionOptions::qos(QoS::AtLeastOnce)),
            ("c/d", SubscriptionOptions::qos(QoS::ExactlyOnce)),
        ];
        assert!(s.filters.iter().eq(v.iter().copied()));
        let (out, n) = enc(&Packet::Subscribe(s), V311);
        assert_eq!(&out[..n], FIG_3_22);
    }

    #[test]
    fn empty_subscribe_mqtt_3_8_3_3() {
        assert_eq!(
            dec(&[0x82, 2, 0, 1], V311),
            Err(DecodeError::NoTopicFilter {
                packet: "SUBSCRIBE"
            })
        );
        assert_eq!(
            dec(&[0xA2, 2, 0, 1], V311),
            Err(DecodeError::NoTopicFilter {
                packet: "UNSUBSCRIBE"
            })
        );
    }

    #[test]
    fn bad_filters_mqtt_4_7_1() {
        assert_eq!(
            dec(&[0x82, 8, 0, 1, 0, 3, b'a', b'#', b'b', 0], V311),
            Err(DecodeError::BadTopicFilter(
                topic::TopicError::BadMultiLevelWildcard
            ))
        );
        assert_eq!(
            dec(&[0xA2, 6, 0, 1, 0, 2, b'a', b'+'], V311),
            Err(DecodeError::BadTopicFilter(
                topic::TopicError::BadSingleLevelWildcard
            ))
        );
        assert_eq!(
            dec(&[0x82, 6, 0, 1, 0, 1, b'a', 3], V311),
            Err(DecodeError::BadQos {
                field: "requested QoS"
            })
        );
    }

    #[test]
    fn no_local_on_shared_is_protocol_error() {
        let mut b = [0u8; 21];
        b[..5].copy_from_slice(&[0x82, 19, 0, 1, 0]); // SUBSCRIBE, id 1, no properties
        b[5..7].copy_from_slice(&[0, 13]);
        b[7..20].copy_from_slice(b"$share/g/a/bc");
        b[20] = 0x04; // no-local
        assert_eq!(
            dec(&b, V5),
            Err(DecodeError::BadSubscriptionOptions(
                "no-local on a shared subscription"
            ))
        );
    }

    #[test]
    fn v5_options_and_subscription_id() {
        let list = [(
            "x/#",
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::SendIfNew,
            },
        )];
        let s = Subscribe {
            packet_id: PacketId::new(2).unwrap(),
            properties: Properties {
                subscription_identifiers: crate::properties::SubscriptionIds::List(&[42]),
                ..Default::default()
            },
            filters: SubscribeFilters::List(&list),
        };
        let (out, n) = enc(&Packet::Subscribe(s), V5);
        let Packet::Subscribe(d) = dec(&out[..n], V5).unwrap() else {
            panic!()
        };
        assert_eq!(d, s);
        assert_eq!(d.properties.subscription_identifiers.first(), Some(42));
    }

    #[test]
    fn unsubscribe_round_trip() {
        let list = ["a/b", "c/#"];
        let u = Unsubscribe {
            packet_id: PacketId::new(4).unwrap(),
            properties: Properties::default(),
            filters: UnsubscribeFilters::List(&list),
        };
        for v in [V311, V5] {
            let (out, n) = enc(&Packet::Unsubscribe(u), v);
            assert_eq!(dec(&out[..n], v).unwrap(), Packet::Unsubscribe(u));
        }
    }
}
