//! Where a device finds the school's MQTT broker: `host:port`, checked when it
//! is written into a provisioning file and when a device is told to use it.

use std::fmt;
use std::str::FromStr;

/// Where the broker listens: `host:port`, or `[v6 address]:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
}

/// A broker setting that is not `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "broker address {0:?} is not HOST:PORT with a port from 1 to 65535 \
     (for example 127.0.0.1:1883)"
)]
pub struct BadBrokerAddress(String);

impl FromStr for BrokerAddress {
    type Err = BadBrokerAddress;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadBrokerAddress(text.to_string());
        let (host, port) = text.trim().rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl BrokerAddress {
    /// Whether the broker is on this machine, where plain MQTT is not seen by
    /// anyone on the network.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_parse_host_and_port() {
        let parse = |s: &str| s.parse::<BrokerAddress>();
        assert_eq!(
            parse("127.0.0.1:1883"),
            Ok(BrokerAddress {
                host: "127.0.0.1".into(),
                port: 1883
            })
        );
        assert_eq!(parse("hub.local:8883").unwrap().host, "hub.local");
        assert_eq!(parse("[::1]:1883").unwrap().host, "::1");
        assert_eq!(parse("[::1]:1883").unwrap().to_string(), "[::1]:1883");
        for bad in [
            "",
            "hub",
            ":1883",
            "hub:",
            "hub:0",
            "hub:70000",
            "mqtt://hub:1883",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn only_local_brokers_count_as_loopback() {
        let loopback = |s: &str| s.parse::<BrokerAddress>().unwrap().is_loopback();
        assert!(loopback("127.0.0.1:1883"));
        assert!(loopback("localhost:1883"));
        assert!(loopback("[::1]:1883"));
        assert!(!loopback("192.168.1.10:1883"));
        assert!(!loopback("hub.school:1883"));
    }
}
