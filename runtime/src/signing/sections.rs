//! The top-level section layout of a WebAssembly binary, as far as signing needs it.
//!
//! A module or component is an 8-byte header followed by sections, each `id: u8`,
//! `size: varuint32`, `payload`. Signing works on this layout alone (it never has to understand
//! what a section means): the signature is a custom section placed first, the manifest a custom
//! section placed last, and the signed content is every byte after the signature section.

use super::SignatureError;

/// The section id of custom sections.
pub const CUSTOM_SECTION_ID: u8 = 0;

/// One top-level section, borrowed from the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a> {
    /// Section id (0 for custom sections).
    pub id: u8,
    /// For custom sections, the name.
    pub name: Option<&'a str>,
    /// The payload after the custom-section name (the whole payload for other sections).
    pub payload: &'a [u8],
    /// The section's bytes, id and size included.
    pub raw: &'a [u8],
}

/// Reads an unsigned LEB128 32-bit integer at `pos`, advancing it.
pub fn read_varuint32(bytes: &[u8], pos: &mut usize) -> Result<u32, SignatureError> {
    let mut result: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*pos).ok_or(SignatureError::Malformed("truncated integer"))?;
        *pos += 1;
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(result).map_err(|_| SignatureError::Malformed("integer too large"));
        }
    }
    Err(SignatureError::Malformed("integer too long"))
}

/// Appends `value` as unsigned LEB128.
pub fn write_varuint32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a length-prefixed byte string at `pos`, advancing it.
pub fn read_bytes<'a>(bytes: &'a [u8], pos: &mut usize) -> Result<&'a [u8], SignatureError> {
    let len = read_varuint32(bytes, pos)? as usize;
    let end = pos.checked_add(len).filter(|end| *end <= bytes.len()).ok_or(SignatureError::Malformed("truncated"))?;
    let slice = &bytes[*pos..end];
    *pos = end;
    Ok(slice)
}

/// Appends `data` with a varuint32 length prefix.
pub fn write_bytes(out: &mut Vec<u8>, data: &[u8]) {
    write_varuint32(out, u32::try_from(data.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(data);
}

/// The 8-byte header and the top-level sections of `binary`.
///
/// # Errors
/// [`SignatureError::Malformed`] when the bytes are not a well-framed WebAssembly binary.
pub fn parse(binary: &[u8]) -> Result<(&[u8], Vec<Section<'_>>), SignatureError> {
    if binary.len() < 8 || &binary[..4] != b"\0asm" {
        return Err(SignatureError::Malformed("not a WebAssembly binary"));
    }
    let mut sections = Vec::new();
    let mut pos = 8;
    while pos < binary.len() {
        let start = pos;
        let id = binary[pos];
        pos += 1;
        let payload = read_bytes(binary, &mut pos)?;
        let (name, payload) = if id == CUSTOM_SECTION_ID {
            let mut at = 0;
            let name = read_bytes(payload, &mut at)?;
            let name =
                std::str::from_utf8(name).map_err(|_| SignatureError::Malformed("custom section name is not UTF-8"))?;
            (Some(name), &payload[at..])
        } else {
            (None, payload)
        };
        sections.push(Section { id, name, payload, raw: &binary[start..pos] });
    }
    Ok((&binary[..8], sections))
}

/// Encodes a custom section called `name` holding `payload`.
pub fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(name.len() + payload.len() + 5);
    write_bytes(&mut body, name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = vec![CUSTOM_SECTION_ID];
    write_bytes(&mut out, &body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, 16_384, u32::MAX] {
            let mut out = Vec::new();
            write_varuint32(&mut out, value);
            let mut pos = 0;
            assert_eq!(read_varuint32(&out, &mut pos).expect("decodes"), value);
            assert_eq!(pos, out.len());
        }
        assert!(read_varuint32(&[0x80, 0x80], &mut 0).is_err());
    }

    #[test]
    fn parses_custom_sections_and_rejects_truncation() {
        let mut binary = b"\0asm\x0d\x00\x01\x00".to_vec();
        binary.extend(custom_section("hello", b"world"));
        let (header, sections) = parse(&binary).expect("parses");
        assert_eq!(header, b"\0asm\x0d\x00\x01\x00");
        assert_eq!(sections.len(), 1);
        assert_eq!(sections[0].name, Some("hello"));
        assert_eq!(sections[0].payload, b"world");
        assert!(parse(&binary[..binary.len() - 1]).is_err());
    }
}
