//! Property tests: `decode(encode(p)) == p` for every packet type in 3.1.1 and 5.0, and the
//! decoder never panics on arbitrary bytes, whole or split at any point.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use proptest::option::of;
use proptest::prelude::*;
use tern_codec::*;

#[derive(Clone, Debug, Default)]
struct OwnedProps {
    payload_format_indicator: Option<u8>,
    message_expiry_interval: Option<u32>,
    content_type: Option<String>,
    response_topic: Option<String>,
    correlation_data: Option<Vec<u8>>,
    subscription_identifiers: Vec<u32>,
    session_expiry_interval: Option<u32>,
    assigned_client_identifier: Option<String>,
    server_keep_alive: Option<u16>,
    authentication_method: Option<String>,
    authentication_data: Option<Vec<u8>>,
    request_problem_information: Option<u8>,
    will_delay_interval: Option<u32>,
    request_response_information: Option<u8>,
    response_information: Option<String>,
    server_reference: Option<String>,
    reason_string: Option<String>,
    receive_maximum: Option<u16>,
    topic_alias_maximum: Option<u16>,
    topic_alias: Option<u16>,
    maximum_qos: Option<u8>,
    retain_available: Option<u8>,
    user: Vec<(String, String)>,
    maximum_packet_size: Option<u32>,
    wildcard_subscription_available: Option<u8>,
    subscription_identifier_available: Option<u8>,
    shared_subscription_available: Option<u8>,
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Connect,
    Will,
    Connack,
    Publish,
    Ack,
    Subscribe,
    Reply,
    Unsubscribe,
    Disconnect,
    Auth,
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 é/_-]{0,12}"
}
fn topic_name() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,6}(/[a-z0-9]{0,6}){0,3}"
}
fn topic_filter() -> impl Strategy<Value = String> {
    prop_oneof![
        topic_name(),
        "[a-z]{1,4}/\\+(/[a-z]{1,4})?",
        "([a-z]{1,4}/){0,2}#",
        Just("+".to_string()),
    ]
}
fn flag() -> impl Strategy<Value = u8> {
    0u8..=1
}
fn nz16() -> impl Strategy<Value = u16> {
    1u16..
}

prop_compose! {
    fn any_props(ctx: Ctx)(
        a in (of(flag()), of(any::<u32>()), of(text()), of(topic_name()), of(prop::collection::vec(any::<u8>(), 0..8))),
        b in (prop::collection::vec(1u32..=268_435_455, 0..3), of(any::<u32>()), of(text()), of(any::<u16>())),
        c in (of(text()), of(prop::collection::vec(any::<u8>(), 0..8)), of(flag()), of(any::<u32>()), of(flag())),
        d in (of(text()), of(text()), of(text()), of(nz16()), of(any::<u16>()), of(nz16())),
        e in (of(flag()), of(flag()), prop::collection::vec((text(), text()), 0..3), of(1u32..), of(flag()), of(flag()), of(flag())),
    ) -> OwnedProps {
        let mut p = OwnedProps {
            payload_format_indicator: a.0, message_expiry_interval: a.1, content_type: a.2,
            response_topic: a.3, correlation_data: a.4,
            subscription_identifiers: b.0, session_expiry_interval: b.1,
            assigned_client_identifier: b.2, server_keep_alive: b.3,
            authentication_method: c.0, authentication_data: c.1, request_problem_information: c.2,
            will_delay_interval: c.3, request_response_information: c.4,
            response_information: d.0, server_reference: d.1, reason_string: d.2,
            receive_maximum: d.3, topic_alias_maximum: d.4, topic_alias: d.5,
            maximum_qos: e.0, retain_available: e.1, user: e.2, maximum_packet_size: e.3,
            wildcard_subscription_available: e.4, subscription_identifier_available: e.5,
            shared_subscription_available: e.6,
        };
        restrict(&mut p, ctx);
        p
    }
}

/// Clears what MQTT 5.0 table 2-4 does not allow in `ctx`.
fn restrict(p: &mut OwnedProps, ctx: Ctx) {
    use Ctx::*;
    let msg = matches!(ctx, Publish | Will);
    if !msg {
        p.payload_format_indicator = None;
        p.message_expiry_interval = None;
        p.content_type = None;
        p.response_topic = None;
        p.correlation_data = None;
    }
    match ctx {
        Publish => {}
        Subscribe => p.subscription_identifiers.truncate(1),
        _ => p.subscription_identifiers.clear(),
    }
    if !matches!(ctx, Connect | Connack | Disconnect) {
        p.session_expiry_interval = None;
    }
    if ctx != Connack {
        p.assigned_client_identifier = None;
        p.server_keep_alive = None;
        p.response_information = None;
        p.maximum_qos = None;
        p.retain_available = None;
        p.wildcard_subscription_available = None;
        p.subscription_identifier_available = None;
        p.shared_subscription_available = None;
    }
    if !matches!(ctx, Connect | Connack | Auth) || p.authentication_method.is_none() {
        p.authentication_method = None;
        p.authentication_data = None;
    }
    if ctx != Connect {
        p.request_problem_information = None;
        p.request_response_information = None;
    }
    if ctx != Will {
        p.will_delay_interval = None;
    }
    if !matches!(ctx, Connack | Disconnect) {
        p.server_reference = None;
    }
    if matches!(ctx, Connect | Will | Publish | Subscribe | Unsubscribe) {
        p.reason_string = None;
    }
    if !matches!(ctx, Connect | Connack) {
        p.receive_maximum = None;
        p.topic_alias_maximum = None;
        p.maximum_packet_size = None;
    }
    if ctx != Publish {
        p.topic_alias = None;
    }
}

struct Views<'a> {
    users: Vec<(&'a str, &'a str)>,
}

impl OwnedProps {
    fn view<'a>(&'a self, v: &'a Views<'a>) -> Properties<'a> {
        Properties {
            payload_format_indicator: self.payload_format_indicator,
            message_expiry_interval: self.message_expiry_interval,
            content_type: self.content_type.as_deref(),
            response_topic: self.response_topic.as_deref(),
            correlation_data: self.correlation_data.as_deref(),
            subscription_identifiers: SubscriptionIds::List(&self.subscription_identifiers),
            session_expiry_interval: self.session_expiry_interval,
            assigned_client_identifier: self.assigned_client_identifier.as_deref(),
            server_keep_alive: self.server_keep_alive,
            authentication_method: self.authentication_method.as_deref(),
            authentication_data: self.authentication_data.as_deref(),
            request_problem_information: self.request_problem_information,
            will_delay_interval: self.will_delay_interval,
            request_response_information: self.request_response_information,
            response_information: self.response_information.as_deref(),
            server_reference: self.server_reference.as_deref(),
            reason_string: self.reason_string.as_deref(),
            receive_maximum: self.receive_maximum,
            topic_alias_maximum: self.topic_alias_maximum,
            topic_alias: self.topic_alias,
            maximum_qos: self.maximum_qos,
            retain_available: self.retain_available,
            user_properties: UserProperties::List(&v.users),
            maximum_packet_size: self.maximum_packet_size,
            wildcard_subscription_available: self.wildcard_subscription_available,
            subscription_identifier_available: self.subscription_identifier_available,
            shared_subscription_available: self.shared_subscription_available,
        }
    }
    fn views(&self) -> Views<'_> {
        Views {
            users: self
                .user
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect(),
        }
    }
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}
fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![Just(ProtocolVersion::V311), Just(ProtocolVersion::V5)]
}
fn pid() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|n| PacketId::new(n).unwrap())
}

/// Encodes, decodes and compares; for 3.1.1 the properties are not carried, so the
/// comparison is against the packet re-encoded without them.
fn check(p: &Packet<'_>, v: ProtocolVersion) -> Result<(), TestCaseError> {
    let len = p.encoded_len(v).unwrap();
    let mut buf = vec![0u8; len];
    assert_eq!(p.encode(v, &mut buf).unwrap(), len);
    let (d, used) = decode(&buf, v, u32::MAX).unwrap().unwrap();
    prop_assert_eq!(used, len);
    // Re-encoding the decoded packet gives the same bytes.
    let mut again = vec![0u8; len];
    prop_assert_eq!(d.encode(v, &mut again).unwrap(), len);
    prop_assert_eq!(&again, &buf);
    if v.is_v5() {
        prop_assert_eq!(&d, p);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn connect_round_trip(
        v in version(), clean in any::<bool>(), ka in any::<u16>(), id in "[a-zA-Z0-9-]{0,23}",
        props in any_props(Ctx::Connect), will in of((topic_name(), prop::collection::vec(any::<u8>(), 0..16), qos(), any::<bool>(), any_props(Ctx::Will))),
        user in of(text()), pass in of(prop::collection::vec(any::<u8>(), 0..8)),
    ) {
        let pv = props.views();
        let wv = will.as_ref().map(|w| w.4.views());
        let pass = if user.is_none() && !v.is_v5() { None } else { pass };
        let c = Connect {
            protocol: v, clean_start: clean, keep_alive: ka, properties: props.view(&pv), client_id: &id,
            will: will.as_ref().zip(wv.as_ref()).map(|(w, wv)| Will { topic: &w.0, payload: &w.1, qos: w.2, retain: w.3, properties: w.4.view(wv) }),
            username: user.as_deref(), password: pass.as_deref(),
        };
        check(&Packet::Connect(c), v)?;
    }

    #[test]
    fn connack_round_trip(v in version(), sp in any::<bool>(), code in prop::sample::select(vec![0u8, 0x80, 0x84, 0x85, 0x86, 0x87, 0x88]), props in any_props(Ctx::Connack)) {
        let pv = props.views();
        let reason = ReasonCode::from_u8(code).unwrap();
        check(&Packet::Connack(Connack { session_present: sp && code == 0, reason, properties: props.view(&pv) }), v)?;
    }

    #[test]
    fn publish_round_trip(
        v in version(), q in qos(), dup in any::<bool>(), retain in any::<bool>(), topic in topic_name(),
        id in pid(), props in any_props(Ctx::Publish), payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let pv = props.views();
        let p = Publish {
            dup: dup && q != QoS::AtMostOnce, qos: q, retain, topic: &topic,
            packet_id: if q == QoS::AtMostOnce { None } else { Some(id) },
            properties: props.view(&pv), payload: &payload,
        };
        check(&Packet::Publish(p), v)?;
    }

    #[test]
    fn acks_round_trip(v in version(), id in pid(), which in 0..4usize, code in prop::sample::select(vec![0u8, 0x10, 0x80, 0x87, 0x92]), props in any_props(Ctx::Ack)) {
        let pv = props.views();
        let ok_codes: &[u8] = if which < 2 { &[0, 0x10, 0x80, 0x87] } else { &[0, 0x92] };
        let code = if ok_codes.contains(&code) { code } else { 0 };
        let a = Ack { packet_id: id, reason: ReasonCode::from_u8(code).unwrap(), properties: props.view(&pv) };
        let p = match which { 0 => Packet::Puback(a), 1 => Packet::Pubrec(a), 2 => Packet::Pubrel(a), _ => Packet::Pubcomp(a) };
        check(&p, v)?;
    }

    #[test]
    fn subscribe_round_trip(v in version(), id in pid(), props in any_props(Ctx::Subscribe),
        filters in prop::collection::vec((topic_filter(), qos(), any::<bool>(), any::<bool>(), 0u8..3), 1..5)) {
        let pv = props.views();
        let list: Vec<(&str, SubscriptionOptions)> = filters.iter().map(|(f, q, nl, rap, rh)| {
            let o = if v.is_v5() {
                SubscriptionOptions { qos: *q, no_local: *nl, retain_as_published: *rap,
                    retain_handling: [RetainHandling::SendAtSubscribe, RetainHandling::SendIfNew, RetainHandling::DoNotSend][*rh as usize] }
            } else { SubscriptionOptions::qos(*q) };
            (f.as_str(), o)
        }).collect();
        check(&Packet::Subscribe(Subscribe { packet_id: id, properties: props.view(&pv), filters: SubscribeFilters::List(&list) }), v)?;
    }

    #[test]
    fn suback_unsuback_round_trip(v in version(), id in pid(), props in any_props(Ctx::Reply),
        codes in prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 0x80]), 1..5)) {
        let pv = props.views();
        check(&Packet::Suback(Suback { packet_id: id, properties: props.view(&pv), reasons: &codes }), v)?;
        let ucodes: Vec<u8> = codes.iter().map(|c| if *c == 0x80 { 0x80 } else { 0 }).collect();
        let ucodes = if v.is_v5() { ucodes } else { vec![] };
        check(&Packet::Unsuback(Unsuback { packet_id: id, properties: props.view(&pv), reasons: &ucodes }), v)?;
    }

    #[test]
    fn unsubscribe_round_trip(v in version(), id in pid(), props in any_props(Ctx::Unsubscribe), filters in prop::collection::vec(topic_filter(), 1..5)) {
        let pv = props.views();
        let list: Vec<&str> = filters.iter().map(String::as_str).collect();
        check(&Packet::Unsubscribe(Unsubscribe { packet_id: id, properties: props.view(&pv), filters: UnsubscribeFilters::List(&list) }), v)?;
    }

    #[test]
    fn disconnect_auth_ping_round_trip(v in version(), code in prop::sample::select(vec![0u8, 4, 0x80, 0x8E, 0x95]), props in any_props(Ctx::Disconnect), aprops in any_props(Ctx::Auth), acode in prop::sample::select(vec![0u8, 0x18, 0x19])) {
        let pv = props.views();
        check(&Packet::Disconnect(Disconnect { reason: ReasonCode::from_u8(code).unwrap(), properties: props.view(&pv) }), v)?;
        check(&Packet::Pingreq, v)?;
        check(&Packet::Pingresp, v)?;
        if v.is_v5() {
            let av = aprops.views();
            check(&Packet::Auth(Auth { reason: ReasonCode::from_u8(acode).unwrap(), properties: aprops.view(&av) }), v)?;
        }
    }

    /// Arbitrary bytes never panic, and a prefix of a valid decode is "need more bytes".
    #[test]
    fn decoder_total_on_arbitrary_input(bytes in prop::collection::vec(any::<u8>(), 0..300), v in version(), split in any::<prop::sample::Index>()) {
        let whole = decode(&bytes, v, 1 << 20);
        if let Ok(Some((_, used))) = whole {
            let cut = split.index(used.max(1));
            if cut < used {
                let prefix = decode(&bytes[..cut], v, 1 << 20);
                prop_assert!(matches!(prefix, Ok(None)), "prefix gave {:?}", prefix);
            }
        }
    }

    /// Valid packets split at any point: every prefix is `Ok(None)`.
    #[test]
    fn framer_split_points(topic in topic_name(), payload in prop::collection::vec(any::<u8>(), 0..300), v in version()) {
        let p = Packet::Publish(Publish::new(&topic, &payload));
        let mut buf = vec![0u8; p.encoded_len(v).unwrap()];
        p.encode(v, &mut buf).unwrap();
        for cut in 0..buf.len() {
            prop_assert_eq!(decode(&buf[..cut], v, u32::MAX), Ok(None));
        }
    }
}
