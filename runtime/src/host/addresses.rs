//! Which IP addresses count as non-public for the outbound allow-list.
//!
//! A wildcard pattern (`*`, `*.example.com`) reaches only public addresses; everything here must be
//! named exactly: as an IP literal, or as a name in a grant that says `allow_private` (a name is
//! only as trustworthy as its DNS, so a granted `api.partner.example` that starts answering
//! `10.0.0.5` must not open the internal network). Link-local addresses (cloud metadata) are
//! never reached. The list errs on the side of "non-public": an address that is reserved,
//! special-purpose, or embeds another address that could be non-public (NAT64, 6to4, Teredo,
//! IPv4-compatible and IPv4-mapped IPv6) is included, because a connector has no business reaching
//! it through a wildcard and some network stacks route the embedded address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is loopback, private, link-local, reserved or otherwise not a public destination.
pub(crate) fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => is_non_public_v6(v6),
    }
}

/// Whether `ip` is where cloud metadata services answer with the machine's credentials:
/// link-local (169.254.0.0/16, fe80::/10, and 169.254.x.y embedded in IPv6 — IPv4-mapped,
/// IPv4-compatible, NAT64, 6to4) and the metadata addresses outside it (AWS's `fd00:ec2::254`,
/// Alibaba's `100.100.100.200`, Azure's wire server `168.63.129.16`). No grant reaches it.
pub(crate) fn is_link_local(ip: IpAddr) -> bool {
    const METADATA_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(100, 100, 100, 200), Ipv4Addr::new(168, 63, 129, 16)];
    let v4_link_local = |v4: Ipv4Addr| v4.is_link_local() || METADATA_V4.contains(&v4);
    match ip {
        IpAddr::V4(v4) => v4_link_local(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
            (s[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6.to_ipv4_mapped().is_some_and(v4_link_local)
                || (s[..6] == [0; 6] && v4_link_local(embedded(s[6], s[7]))) // IPv4-compatible
                || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && v4_link_local(embedded(s[6], s[7]))) // NAT64
                || (s[..3] == [0x64, 0xff9b, 1] && v4_link_local(embedded(s[6], s[7]))) // local-use NAT64
                || (s[0] == 0x2002 && v4_link_local(embedded(s[1], s[2]))) // 6to4
        }
    }
}

fn is_non_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0 // "this network", 0.0.0.0/8
        || (a == 100 && (b & 0xc0) == 64) // carrier-grade NAT, 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15
        || a >= 240 // reserved 240.0.0.0/4, including broadcast 255.255.255.255
}

fn is_non_public_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // deprecated site local, fec0::/10
        || s[..6] == [0; 6] // IPv4-compatible ::a.b.c.d (deprecated; never a real destination)
        || v6.to_ipv4_mapped().is_some_and(is_non_public_v4) // IPv4-mapped ::ffff:a.b.c.d
        || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_non_public_v4(embedded(s[6], s[7]))) // NAT64
        || s[..3] == [0x64, 0xff9b, 1] // local-use NAT64, 64:ff9b:1::/48
        || (s[0] == 0x2002 && is_non_public_v4(embedded(s[1], s[2]))) // 6to4, 2002::/16
        || s[..2] == [0x2001, 0] // Teredo, 2001::/32
        || s[..2] == [0x2001, 0xdb8] // documentation, 2001:db8::/32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn non_public(text: &str) -> bool {
        is_non_public(text.parse().expect("an IP address"))
    }

    #[test]
    fn ipv4_special_ranges_are_non_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "224.0.0.1",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "192.0.0.1",
            "192.0.0.255",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.254",
            "198.51.100.7",
            "203.0.113.9",
            "240.0.0.1",
            "250.1.2.3",
            "255.255.255.255",
        ] {
            assert!(non_public(ip), "{ip} must count as non-public");
        }
    }

    #[test]
    fn ipv4_public_neighbours_stay_public() {
        for ip in ["8.8.8.8", "1.1.1.1", "100.128.0.1", "192.0.1.1", "198.17.255.255", "198.20.0.1", "223.255.255.1"] {
            assert!(!non_public(ip), "{ip} is public");
        }
    }

    #[test]
    fn ipv6_special_ranges_are_non_public() {
        for ip in [
            "::1",
            "::",
            "ff02::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "feff::1",
            "::7f00:1",
            "::8.8.8.8",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:198.18.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::808:808",
            "2002:7f00:1::",
            "2002:c612:1::",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "2001:db8:ffff::1",
        ] {
            assert!(non_public(ip), "{ip} must count as non-public");
        }
    }

    #[test]
    fn ipv6_public_addresses_stay_public() {
        for ip in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "64:ff9b:2::1",
            "2002:808:808::",
            "2001:200::1",
            "2a00:1450:4001::1",
        ] {
            assert!(!non_public(ip), "{ip} is public");
        }
    }
}
