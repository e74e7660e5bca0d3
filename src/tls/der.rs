//! The few DER primitives this module writes or walks by hand: a TLV encoder (test certificates'
//! SAN extension, the hex form of odd DN values), a TLV reader for the outer layers of a PKCS#8
//! key, and PEM encoding with optional explanatory text before it (RFC 7468 §5.2).
//! Everything else is parsed by x509-parser, rustls-webpki and rustls-pki-types.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Universal tags used here.
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
#[cfg(test)]
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_IA5_STRING: u8 = 0x16;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// The identifier octets for a tag of `class` (0-3), constructed or not, number `tag`.
pub(crate) fn identifier(class: u8, constructed: bool, tag: u32) -> Vec<u8> {
    let first = ((class & 3) << 6) | if constructed { 0x20 } else { 0 };
    if tag < 31 {
        // tag < 31 fits the low five bits.
        return vec![first | u8::try_from(tag).unwrap_or(0)];
    }
    let mut out = vec![first | 0x1f];
    let mut groups = Vec::new();
    let mut t = tag;
    loop {
        groups.push(u8::try_from(t & 0x7f).unwrap_or(0));
        t >>= 7;
        if t == 0 {
            break;
        }
    }
    for (i, g) in groups.iter().rev().enumerate() {
        out.push(if i + 1 < groups.len() { g | 0x80 } else { *g });
    }
    out
}

/// The DER length octets for `len`.
pub(crate) fn length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![u8::try_from(len).unwrap_or(0)];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | u8::try_from(bytes.len()).unwrap_or(0)];
    out.extend(bytes);
    out
}

/// A TLV with a one-byte identifier.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(length(content.len()));
    out.extend_from_slice(content);
    out
}

/// Reads one TLV with a one-byte identifier and a definite length: (identifier, content, rest).
pub(crate) fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo, or the ECPrivateKey (SEC1) inside
/// an EC one: the content of its `privateKey` OCTET STRING.
pub(crate) fn pkcs8_inner_key(pkcs8: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = read_tlv(pkcs8)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    let (tag, _version, rest) = read_tlv(body)?;
    if tag != TAG_INTEGER {
        return None;
    }
    let (tag, _algorithm, rest) = read_tlv(rest)?;
    if tag != TAG_SEQUENCE {
        return None;
    }
    let (tag, key, _) = read_tlv(rest)?;
    (tag == TAG_OCTET_STRING).then_some(key)
}

/// An OID's DER content octets from its arcs (the first two arcs must be valid: 0-2, < 40).
pub(crate) fn oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |mut v: u64| {
        let mut groups = vec![u8::try_from(v & 0x7f).unwrap_or(0)];
        v >>= 7;
        while v > 0 {
            groups.push(0x80 | u8::try_from(v & 0x7f).unwrap_or(0));
            v >>= 7;
        }
        out.extend(groups.iter().rev());
    };
    if let [a, b, rest @ ..] = arcs {
        push(a * 40 + b);
        for arc in rest {
            push(*arc);
        }
    }
    out
}

/// PEM with `label`, 64 columns, optionally preceded by explanatory text lines.
pub(crate) fn pem(label: &str, der: &[u8], preamble: &str) -> String {
    let mut out = String::new();
    for line in preamble.lines() {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    let b64 = STANDARD.encode(der);
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_identifiers() {
        assert_eq!(length(5), vec![5]);
        assert_eq!(length(0x80), vec![0x81, 0x80]);
        assert_eq!(length(0x1234), vec![0x82, 0x12, 0x34]);
        assert_eq!(identifier(0, false, 12), vec![0x0c]);
        assert_eq!(identifier(2, true, 0), vec![0xa0]);
        assert_eq!(identifier(2, false, 200), vec![0x9f, 0x81, 0x48]);
    }

    #[test]
    fn oid_and_tlv_round_trip() {
        // 2.5.5.5
        assert_eq!(oid_content(&[2, 5, 5, 5]), vec![0x55, 0x05, 0x05]);
        // 1.2.840.113549
        assert_eq!(
            oid_content(&[1, 2, 840, 113_549]),
            vec![0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]
        );
        let long = vec![7u8; 300];
        let encoded = tlv(TAG_OCTET_STRING, &long);
        let (tag, content, rest) = read_tlv(&encoded).expect("tlv");
        assert_eq!((tag, content, rest.len()), (TAG_OCTET_STRING, &long[..], 0));
        assert!(read_tlv(&encoded[..encoded.len() - 1]).is_none());
        assert!(read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(read_tlv(&[]).is_none());
    }

    #[test]
    fn pem_with_preamble() {
        let text = pem("CERTIFICATE", &[1, 2, 3], "line one\nline two");
        assert!(text.starts_with("line one\nline two\n-----BEGIN CERTIFICATE-----\nAQID\n"));
    }
}
