//! The V2 binary format (libmacaroons `doc/format.txt`, go-macaroon `marshal-v2.go`).
//!
//! ```text
//! macaroon = 0x02 [LOCATION] IDENTIFIER EOS *caveat EOS SIGNATURE
//! caveat   = [LOCATION] IDENTIFIER [VID] EOS
//! field    = uvarint(type) uvarint(len) bytes      EOS = 0x00
//! types: LOCATION = 1, IDENTIFIER = 2, VID = 4, SIGNATURE = 6
//! ```
//!
//! Decoding is as strict as go-macaroon: field types strictly increase inside a section, the header
//! is exactly `[location] identifier`, a first-party caveat carries no location, and the signature
//! is 32 bytes.

use crate::crypto::SIGNATURE_LEN;
use crate::{Caveat, Error, Limits, Macaroon};

/// The version byte that starts every V2 binary macaroon.
pub(crate) const VERSION: u8 = 2;

const EOS: u64 = 0;
const LOCATION: u64 = 1;
const IDENTIFIER: u64 = 2;
const VID: u64 = 4;
const SIGNATURE: u64 = 6;

/// go-macaroon rejects varints above this value.
const MAX_VARINT: u64 = 0x7fff_ffff;

// === encoding ===

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_field(out: &mut Vec<u8>, field_type: u64, data: &[u8]) {
    put_uvarint(out, field_type);
    put_uvarint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn field_len(data: &[u8]) -> usize {
    1 + uvarint_len(data.len() as u64) + data.len()
}

impl Macaroon {
    /// The number of bytes [`to_binary_v2`](Self::to_binary_v2) produces.
    pub fn binary_v2_len(&self) -> usize {
        let mut n = 1 + 1 + 1 + field_len(&self.signature);
        if !self.location.is_empty() {
            n += field_len(self.location.as_bytes());
        }
        n += field_len(&self.identifier);
        for c in &self.caveats {
            if let Some(loc) = c.location.as_deref().filter(|l| !l.is_empty()) {
                n += field_len(loc.as_bytes());
            }
            n += field_len(&c.id);
            if let Some(vid) = c.verification_id.as_deref().filter(|v| !v.is_empty()) {
                n += field_len(vid);
            }
            n += 1;
        }
        n
    }

    /// Serialises the macaroon in the V2 binary format, byte-compatible with go-macaroon.
    pub fn to_binary_v2(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.binary_v2_len());
        self.write_binary_v2(&mut out);
        out
    }

    /// Appends the V2 binary serialisation to `out`.
    pub fn write_binary_v2(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        if !self.location.is_empty() {
            put_field(out, LOCATION, self.location.as_bytes());
        }
        put_field(out, IDENTIFIER, &self.identifier);
        out.push(EOS as u8);
        for c in &self.caveats {
            if let Some(loc) = c.location.as_deref().filter(|l| !l.is_empty()) {
                put_field(out, LOCATION, loc.as_bytes());
            }
            put_field(out, IDENTIFIER, &c.id);
            if let Some(vid) = c.verification_id.as_deref().filter(|v| !v.is_empty()) {
                put_field(out, VID, vid);
            }
            out.push(EOS as u8);
        }
        out.push(EOS as u8);
        put_field(out, SIGNATURE, &self.signature);
    }
}

// === decoding ===

#[derive(Clone, Copy)]
struct Field<'a> {
    offset: usize,
    field_type: u64,
    data: &'a [u8],
}

/// The fields of one section, at most three (location, identifier, verification id): kept in
/// place, since every credential decodes several sections.
struct Section<'a> {
    fields: [Option<Field<'a>>; 3],
    len: usize,
}

impl<'a> Section<'a> {
    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn into_fields(self) -> impl Iterator<Item = Field<'a>> {
        self.fields.into_iter().flatten()
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn uvarint(&mut self) -> Result<u64, Error> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(Error::BadVarint { offset: start });
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                if value > MAX_VARINT {
                    return Err(Error::BadVarint { offset: start });
                }
                return Ok(value);
            }
        }
        Err(Error::BadVarint { offset: start })
    }

    /// Reads one field; `None` for the end-of-section marker.
    fn field(&mut self) -> Result<Option<Field<'a>>, Error> {
        let offset = self.pos;
        let field_type = self.uvarint()?;
        if field_type == EOS {
            return Ok(None);
        }
        let len = self.uvarint()?;
        let remaining = (self.data.len() - self.pos) as u64;
        if len > remaining {
            return Err(Error::Truncated {
                offset,
                declared: len,
            });
        }
        let len = len as usize;
        let data = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(Some(Field {
            offset,
            field_type,
            data,
        }))
    }

    /// Reads fields up to the end-of-section marker, requiring strictly increasing types. A
    /// section has at most three fields; a fourth is refused with `too_many(that field)`.
    fn section(&mut self, too_many: impl Fn(&Field<'a>) -> Error) -> Result<Section<'a>, Error> {
        let mut section = Section {
            fields: [None; 3],
            len: 0,
        };
        while let Some(f) = self.field()? {
            if section.len > 0
                && section.fields[section.len - 1]
                    .is_some_and(|last| f.field_type <= last.field_type)
            {
                return Err(Error::FieldsOutOfOrder { offset: f.offset });
            }
            if section.len == section.fields.len() {
                return Err(too_many(&f));
            }
            section.fields[section.len] = Some(f);
            section.len += 1;
        }
        Ok(section)
    }
}

fn utf8(data: &[u8]) -> Result<String, Error> {
    std::str::from_utf8(data)
        .map(str::to_owned)
        .map_err(|_| Error::LocationNotUtf8)
}

/// Decodes one V2 macaroon from the start of `data`, returning it and the bytes that follow it.
pub(crate) fn decode_prefix<'a>(
    data: &'a [u8],
    limits: &Limits,
) -> Result<(Macaroon, &'a [u8]), Error> {
    debug_assert_eq!(data.first(), Some(&VERSION));
    let mut r = Reader { data, pos: 1 };

    // Header: [location] identifier.
    let mut header = r
        .section(|_| Error::InvalidHeader)?
        .into_fields()
        .peekable();
    let location = match header.next_if(|f| f.field_type == LOCATION) {
        Some(f) => utf8(f.data)?,
        None => String::new(),
    };
    let identifier = match header.next() {
        Some(f) if f.field_type == IDENTIFIER => f.data.to_vec(),
        _ => return Err(Error::InvalidHeader),
    };
    if header.next().is_some() {
        return Err(Error::InvalidHeader);
    }

    // Caveats until an empty section.
    let mut caveats = Vec::new();
    loop {
        let index = caveats.len();
        let section = r.section(|f| Error::InvalidCaveatField {
            caveat: index,
            field_type: f.field_type,
        })?;
        if section.is_empty() {
            break;
        }
        if index >= limits.max_caveats {
            return Err(Error::TooManyCaveats {
                limit: limits.max_caveats,
            });
        }
        let mut fields = section.into_fields().peekable();
        let location = fields.next_if(|f| f.field_type == LOCATION).map(|f| f.data);
        let id = match fields.next_if(|f| f.field_type == IDENTIFIER) {
            Some(f) => f.data.to_vec(),
            None => return Err(Error::CaveatWithoutIdentifier { caveat: index }),
        };
        let vid = match fields.next() {
            None => None,
            Some(f) if f.field_type == VID => Some(f.data),
            Some(f) => {
                return Err(Error::InvalidCaveatField {
                    caveat: index,
                    field_type: f.field_type,
                });
            }
        };
        if let Some(f) = fields.next() {
            // After the verification id (types only increase), go-macaroon allows nothing.
            return Err(Error::InvalidCaveatField {
                caveat: index,
                field_type: f.field_type,
            });
        }
        // An empty verification id means a first-party caveat (go-macaroon drops it on re-marshal).
        let vid = vid.filter(|v| !v.is_empty());
        let location = location.filter(|l| !l.is_empty());
        if vid.is_none() && location.is_some() {
            return Err(Error::LocationInFirstPartyCaveat { caveat: index });
        }
        caveats.push(Caveat {
            id,
            verification_id: vid.map(<[u8]>::to_vec),
            location: location.map(utf8).transpose()?,
        });
    }

    // Signature.
    let sig = match r.field()? {
        Some(f) if f.field_type == SIGNATURE => f.data,
        _ => return Err(Error::MissingSignature),
    };
    let signature: [u8; SIGNATURE_LEN] = sig
        .try_into()
        .map_err(|_| Error::SignatureLength { len: sig.len() })?;

    Ok((
        Macaroon::from_parts(location, identifier, caveats, signature),
        &data[r.pos..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(data: &[u8]) -> Result<Macaroon, Error> {
        decode_prefix(data, &Limits::default()).map(|(m, _)| m)
    }

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16383, 16384, 1 << 31, u64::MAX] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            assert_eq!(out.len(), uvarint_len(v), "{v}");
        }
    }

    #[test]
    fn rejects_a_field_after_the_verification_id() {
        let mut data = vec![2, 1, 1, b'l', 2, 1, b'i', 0];
        // caveat: id, vid, then a field of type 6
        data.extend_from_slice(&[2, 1, b'c', 4, 1, b'v', 6, 1, b'x', 0, 0, 6, 32]);
        data.extend_from_slice(&[0u8; 32]);
        assert!(matches!(
            decode(&data),
            Err(Error::InvalidCaveatField {
                caveat: 0,
                field_type: 6
            })
        ));
        // The same caveat without the extra field decodes.
        let mut ok = vec![2, 1, 1, b'l', 2, 1, b'i', 0];
        ok.extend_from_slice(&[1, 1, b'L', 2, 1, b'c', 4, 1, b'v', 0, 0, 6, 32]);
        ok.extend_from_slice(&[0u8; 32]);
        let m = decode(&ok).unwrap();
        assert_eq!(m.caveats()[0].verification_id(), Some(&b"v"[..]));
    }

    #[test]
    fn rejects_a_header_of_three_fields() {
        let mut data = vec![2, 1, 1, b'l', 2, 1, b'i', 4, 1, b'v', 0, 0, 6, 32];
        data.extend_from_slice(&[0u8; 32]);
        assert!(matches!(decode(&data), Err(Error::InvalidHeader)));
    }

    #[test]
    fn rejects_out_of_order_header() {
        // identifier then location
        let data = [2, 2, 1, b'i', 1, 1, b'l', 0, 0, 6, 32];
        assert!(matches!(
            decode(&data),
            Err(Error::FieldsOutOfOrder { offset: 4 })
        ));
    }

    #[test]
    fn rejects_missing_identifier() {
        let data = [2, 1, 1, b'l', 0];
        assert_eq!(decode(&data), Err(Error::InvalidHeader));
    }

    #[test]
    fn rejects_truncated_field_and_varint() {
        assert!(matches!(
            decode(&[2, 2, 5, b'a']),
            Err(Error::Truncated {
                offset: 1,
                declared: 5
            })
        ));
        assert!(matches!(
            decode(&[2, 2, 0x80]),
            Err(Error::BadVarint { offset: 2 })
        ));
        // 0x80000000 is above go-macaroon's limit.
        assert!(matches!(
            decode(&[2, 2, 0x80, 0x80, 0x80, 0x80, 0x08]),
            Err(Error::BadVarint { offset: 2 })
        ));
    }

    #[test]
    fn rejects_location_in_first_party_caveat() {
        let mut data = vec![2, 2, 1, b'i', 0];
        data.extend_from_slice(&[1, 1, b'l', 2, 1, b'c', 0, 0, 6, 32]);
        data.extend_from_slice(&[0; 32]);
        assert_eq!(
            decode(&data),
            Err(Error::LocationInFirstPartyCaveat { caveat: 0 })
        );
    }

    #[test]
    fn rejects_short_signature() {
        let mut data = vec![2, 2, 1, b'i', 0, 0, 6, 31];
        data.extend_from_slice(&[0; 31]);
        assert_eq!(decode(&data), Err(Error::SignatureLength { len: 31 }));
    }

    #[test]
    fn empty_vid_is_first_party_and_empty_location_is_absent() {
        let mut data = vec![2, 1, 0, 2, 1, b'i', 0, 2, 1, b'c', 4, 0, 0, 0, 6, 32];
        data.extend_from_slice(&[9; 32]);
        let m = decode(&data).unwrap();
        assert_eq!(m.location(), "");
        assert!(m.caveats()[0].is_first_party());
        // Re-marshalled without the empty fields.
        let mut want = vec![2, 2, 1, b'i', 0, 2, 1, b'c', 0, 0, 6, 32];
        want.extend_from_slice(&[9; 32]);
        assert_eq!(m.to_binary_v2(), want);
    }

    #[test]
    fn caveat_limit() {
        let mut m = Macaroon::new(b"k", b"i".to_vec(), "");
        for _ in 0..5 {
            m.add_first_party_caveat("a=b");
        }
        let limits = Limits {
            max_caveats: 4,
            ..Limits::default()
        };
        assert_eq!(
            decode_prefix(&m.to_binary_v2(), &limits).map(|_| ()),
            Err(Error::TooManyCaveats { limit: 4 })
        );
    }
}
