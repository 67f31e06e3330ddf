//! Networks for allow-lists (`allow_from` of webhook triggers, the server's `trusted_proxies`):
//! `10.0.0.0/8`, `2001:db8::/32` or a single address, and whether an address is inside.

/// A network: an address and the number of leading bits that must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: std::net::IpAddr,
    bits: u8,
}

impl Cidr {
    /// Whether `addr` is inside (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, addr: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let (net, ip, width) = match (self.network, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)), u128::from(u32::from(a)), 32),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        shift >= width || (net >> shift) == (ip >> shift)
    }
}

/// Why an allow-list entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Not an IP address (before any `/`).
    #[error("`{entry}` is not an address or CIDR")]
    Address {
        /// The entry.
        entry: String,
    },
    /// A prefix length that is not a number up to the address's width.
    #[error("`{entry}`: prefix length must be 0-{width}")]
    Prefix {
        /// The entry.
        entry: String,
        /// 32 or 128.
        width: u8,
    },
}

/// Parses `10.0.0.0/8`, `2001:db8::/32` or a single address.
///
/// # Errors
/// [`CidrError`] naming the entry.
pub fn parse_cidr(text: &str) -> std::result::Result<Cidr, CidrError> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (text, None),
    };
    let network: std::net::IpAddr = addr.trim().parse().map_err(|_| CidrError::Address { entry: text.to_string() })?;
    let width = if network.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => width,
        Some(bits) => bits
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= width)
            .ok_or_else(|| CidrError::Prefix { entry: text.to_string(), width })?,
    };
    Ok(Cidr { network, bits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_contain_what_they_should() {
        let net = parse_cidr("192.30.252.0/22").unwrap();
        assert!(net.contains("192.30.253.7".parse().unwrap()));
        assert!(!net.contains("192.30.249.7".parse().unwrap()));
        assert!(net.contains("::ffff:192.30.252.1".parse().unwrap()));
        assert!(parse_cidr("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(parse_cidr("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(parse_cidr("2001:db8::/32").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("ten").is_err());
    }
}
