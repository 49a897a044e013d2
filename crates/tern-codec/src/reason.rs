//! Reason codes (MQTT 5.0 section 2.4) and their MQTT 3.1.1 equivalents (CONNACK return codes,
//! SUBACK return codes). One enum for both versions; the encoder translates for 3.1.1.

/// An MQTT 5.0 reason code. MQTT 3.1.1 return codes are mapped onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ReasonCode {
    /// Success / normal disconnection / granted QoS 0.
    Success = 0x00,
    GrantedQos1 = 0x01,
    GrantedQos2 = 0x02,
    DisconnectWithWill = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QosNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// The code for a byte, or `None` for a value the specification does not define.
    pub const fn from_u8(b: u8) -> Option<Self> {
        use ReasonCode::*;
        Some(match b {
            0x00 => Success,
            0x01 => GrantedQos1,
            0x02 => GrantedQos2,
            0x04 => DisconnectWithWill,
            0x10 => NoMatchingSubscribers,
            0x11 => NoSubscriptionExisted,
            0x18 => ContinueAuthentication,
            0x19 => ReAuthenticate,
            0x80 => UnspecifiedError,
            0x81 => MalformedPacket,
            0x82 => ProtocolError,
            0x83 => ImplementationSpecificError,
            0x84 => UnsupportedProtocolVersion,
            0x85 => ClientIdentifierNotValid,
            0x86 => BadUserNameOrPassword,
            0x87 => NotAuthorized,
            0x88 => ServerUnavailable,
            0x89 => ServerBusy,
            0x8A => Banned,
            0x8B => ServerShuttingDown,
            0x8C => BadAuthenticationMethod,
            0x8D => KeepAliveTimeout,
            0x8E => SessionTakenOver,
            0x8F => TopicFilterInvalid,
            0x90 => TopicNameInvalid,
            0x91 => PacketIdentifierInUse,
            0x92 => PacketIdentifierNotFound,
            0x93 => ReceiveMaximumExceeded,
            0x94 => TopicAliasInvalid,
            0x95 => PacketTooLarge,
            0x96 => MessageRateTooHigh,
            0x97 => QuotaExceeded,
            0x98 => AdministrativeAction,
            0x99 => PayloadFormatInvalid,
            0x9A => RetainNotSupported,
            0x9B => QosNotSupported,
            0x9C => UseAnotherServer,
            0x9D => ServerMoved,
            0x9E => SharedSubscriptionsNotSupported,
            0x9F => ConnectionRateExceeded,
            0xA0 => MaximumConnectTime,
            0xA1 => SubscriptionIdentifiersNotSupported,
            0xA2 => WildcardSubscriptionsNotSupported,
            _ => return None,
        })
    }

    /// The byte on the wire.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// True for codes below 0x80.
    pub const fn is_success(self) -> bool {
        (self as u8) < 0x80
    }

    /// The MQTT 3.1.1 CONNACK return code closest to this reason (section 3.2.2.3).
    pub const fn to_v3_connack(self) -> u8 {
        use ReasonCode::*;
        match self {
            Success => 0,
            UnsupportedProtocolVersion => 1,
            ClientIdentifierNotValid => 2,
            BadUserNameOrPassword | BadAuthenticationMethod => 4,
            NotAuthorized | Banned => 5,
            _ => 3,
        }
    }

    /// The reason for an MQTT 3.1.1 CONNACK return code 0-5.
    pub const fn from_v3_connack(code: u8) -> Option<Self> {
        use ReasonCode::*;
        Some(match code {
            0 => Success,
            1 => UnsupportedProtocolVersion,
            2 => ClientIdentifierNotValid,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }

    /// A short human description, as used in logs and by `tern sub` on refusal.
    pub const fn description(self) -> &'static str {
        use ReasonCode::*;
        match self {
            Success => "success",
            GrantedQos1 => "granted QoS 1",
            GrantedQos2 => "granted QoS 2",
            DisconnectWithWill => "disconnect with will message",
            NoMatchingSubscribers => "no matching subscribers",
            NoSubscriptionExisted => "no subscription existed",
            ContinueAuthentication => "continue authentication",
            ReAuthenticate => "re-authenticate",
            UnspecifiedError => "unspecified error",
            MalformedPacket => "malformed packet",
            ProtocolError => "protocol error",
            ImplementationSpecificError => "implementation specific error",
            UnsupportedProtocolVersion => "unsupported protocol version",
            ClientIdentifierNotValid => "client identifier not valid",
            BadUserNameOrPassword => "bad user name or password",
            NotAuthorized => "not authorized",
            ServerUnavailable => "server unavailable",
            ServerBusy => "server busy",
            Banned => "banned",
            ServerShuttingDown => "server shutting down",
            BadAuthenticationMethod => "bad authentication method",
            KeepAliveTimeout => "keep alive timeout",
            SessionTakenOver => "session taken over",
            TopicFilterInvalid => "topic filter invalid",
            TopicNameInvalid => "topic name invalid",
            PacketIdentifierInUse => "packet identifier in use",
            PacketIdentifierNotFound => "packet identifier not found",
            ReceiveMaximumExceeded => "receive maximum exceeded",
            TopicAliasInvalid => "topic alias invalid",
            PacketTooLarge => "packet too large",
            MessageRateTooHigh => "message rate too high",
            QuotaExceeded => "quota exceeded",
            AdministrativeAction => "administrative action",
            PayloadFormatInvalid => "payload format invalid",
            RetainNotSupported => "retain not supported",
            QosNotSupported => "QoS not supported",
            UseAnotherServer => "use another server",
            ServerMoved => "server moved",
            SharedSubscriptionsNotSupported => "shared subscriptions not supported",
            ConnectionRateExceeded => "connection rate exceeded",
            MaximumConnectTime => "maximum connect time",
            SubscriptionIdentifiersNotSupported => "subscription identifiers not supported",
            WildcardSubscriptionsNotSupported => "wildcard subscriptions not supported",
        }
    }
}

impl core::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({:#04x})", self.description(), self.as_u8())
    }
}

/// Which reason codes each packet may carry (MQTT 5.0 section 2.4, table 2-6).
pub(crate) mod allowed {
    pub const CONNACK: &[u8] = &[
        0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95,
        0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
    ];
    pub const PUBACK: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
    pub const PUBREL: &[u8] = &[0x00, 0x92];
    pub const SUBACK: &[u8] = &[
        0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
    ];
    pub const UNSUBACK: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
    pub const DISCONNECT: &[u8] = &[
        0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
        0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
    ];
    pub const AUTH: &[u8] = &[0x00, 0x18, 0x19];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_code_round_trips() {
        let mut defined = 0;
        for b in 0..=255u8 {
            if let Some(rc) = ReasonCode::from_u8(b) {
                assert_eq!(rc.as_u8(), b);
                defined += 1;
            }
        }
        // MQTT 5.0 table 2-6 defines 43 distinct values.
        assert_eq!(defined, 43);
    }

    #[test]
    fn v3_connack_codes_section_3_2_2_3() {
        for code in 0..=5u8 {
            let rc = ReasonCode::from_v3_connack(code).unwrap();
            assert_eq!(rc.to_v3_connack(), code);
        }
        assert_eq!(ReasonCode::from_v3_connack(6), None);
        assert_eq!(ReasonCode::Banned.to_v3_connack(), 5);
        assert_eq!(ReasonCode::QuotaExceeded.to_v3_connack(), 3);
    }
}
