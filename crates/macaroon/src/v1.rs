//! The V1 binary format: libmacaroons' text packets.
//!
//! Each packet is four hex digits giving its total length (including those digits and the final
//! newline), a field name, one space, the raw data and `\n`. Order: `location`, `identifier`, then
//! per caveat `cid` [`vid`] [`cl`], then `signature` (32 raw bytes). libmacaroons transports the
//! packets base64url-encoded; [`Macaroon::from_text`](crate::Macaroon::from_text) undoes that.

use crate::crypto::SIGNATURE_LEN;
use crate::{Caveat, Error, Limits, Macaroon};

const MAX_PACKET: usize = 0xffff;
const HEADER: usize = 4;

struct Packet<'a> {
    offset: usize,
    name: &'a [u8],
    data: &'a [u8],
    len: usize,
}

fn packet(data: &[u8], offset: usize) -> Result<Packet<'_>, Error> {
    let bad = |reason| Error::BadPacket { offset, reason };
    let rest = &data[offset..];
    if rest.len() < HEADER {
        return Err(bad("truncated length header"));
    }
    let digits = std::str::from_utf8(&rest[..HEADER]).map_err(|_| bad("length is not hex"))?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("length is not hex"));
    }
    let len = usize::from_str_radix(digits, 16).map_err(|_| bad("length is not hex"))?;
    if len > rest.len() {
        return Err(bad("packet extends past the end of the data"));
    }
    if len < HEADER + 2 {
        return Err(bad("packet too short"));
    }
    let body = &rest[HEADER..len];
    let Some((&b'\n', body)) = body.split_last() else {
        return Err(bad("packet does not end with a newline"));
    };
    let Some(space) = body.iter().position(|&b| b == b' ') else {
        return Err(bad("packet has no space after its field name"));
    };
    Ok(Packet {
        offset,
        name: &body[..space],
        data: &body[space + 1..],
        len,
    })
}

fn expect<'a>(data: &'a [u8], offset: usize, name: &str) -> Result<Packet<'a>, Error> {
    let p = packet(data, offset)?;
    if p.name != name.as_bytes() {
        return Err(unexpected(&p));
    }
    Ok(p)
}

fn unexpected(p: &Packet<'_>) -> Error {
    Error::UnexpectedPacket {
        offset: p.offset,
        name: String::from_utf8_lossy(p.name).into_owned(),
    }
}

/// Decodes one V1 macaroon from the start of `data`, returning it and the bytes that follow it.
pub(crate) fn decode_prefix<'a>(
    data: &'a [u8],
    limits: &Limits,
) -> Result<(Macaroon, &'a [u8]), Error> {
    let mut pos = 0;
    let loc = expect(data, pos, "location")?;
    pos += loc.len;
    let location = std::str::from_utf8(loc.data)
        .map_err(|_| Error::LocationNotUtf8)?
        .to_owned();
    let id = expect(data, pos, "identifier")?;
    pos += id.len;
    let identifier = id.data.to_vec();

    let mut caveats: Vec<Caveat> = Vec::new();
    let mut current: Option<Caveat> = None;
    loop {
        if pos >= data.len() {
            return Err(Error::MissingSignature);
        }
        let p = packet(data, pos)?;
        pos += p.len;
        match p.name {
            b"signature" => {
                caveats.extend(current.take());
                let signature: [u8; SIGNATURE_LEN] = p
                    .data
                    .try_into()
                    .map_err(|_| Error::SignatureLength { len: p.data.len() })?;
                for (i, c) in caveats.iter().enumerate() {
                    if c.verification_id.is_none() && c.location.is_some() {
                        return Err(Error::LocationInFirstPartyCaveat { caveat: i });
                    }
                }
                let m = Macaroon::from_parts(location, identifier, caveats, signature);
                return Ok((m, &data[pos..]));
            }
            b"cid" => {
                caveats.extend(current.take());
                if caveats.len() >= limits.max_caveats {
                    return Err(Error::TooManyCaveats {
                        limit: limits.max_caveats,
                    });
                }
                current = Some(Caveat::first_party(p.data));
            }
            b"vid" => match current.as_mut() {
                Some(c) if c.verification_id.is_none() => {
                    c.verification_id = Some(p.data.to_vec()).filter(|v| !v.is_empty());
                }
                _ => return Err(unexpected(&p)),
            },
            b"cl" => match current.as_mut() {
                Some(c) if c.location.is_none() => {
                    let loc = std::str::from_utf8(p.data).map_err(|_| Error::LocationNotUtf8)?;
                    c.location = Some(loc.to_owned()).filter(|l| !l.is_empty());
                }
                _ => return Err(unexpected(&p)),
            },
            _ => return Err(unexpected(&p)),
        }
    }
}

fn put_packet(
    out: &mut Vec<u8>,
    name: &str,
    data: &[u8],
    field: &'static str,
) -> Result<(), Error> {
    let len = HEADER + name.len() + 1 + data.len() + 1;
    if len > MAX_PACKET {
        return Err(Error::PacketTooLong { field });
    }
    out.extend_from_slice(format!("{len:04x}").as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(data);
    out.push(b'\n');
    Ok(())
}

impl Macaroon {
    /// Serialises the macaroon as V1 packets (raw, not base64).
    ///
    /// V1 needs UTF-8 identifiers and caveat ids; L402 identifiers are binary, so L402 macaroons
    /// are V2-only and this returns [`Error::NotRepresentableInV1`] for them.
    pub fn to_binary_v1(&self) -> Result<Vec<u8>, Error> {
        if std::str::from_utf8(&self.identifier).is_err() {
            return Err(Error::NotRepresentableInV1 {
                field: "identifier",
            });
        }
        let mut out = Vec::new();
        put_packet(&mut out, "location", self.location.as_bytes(), "location")?;
        put_packet(&mut out, "identifier", &self.identifier, "identifier")?;
        for c in &self.caveats {
            if std::str::from_utf8(&c.id).is_err() {
                return Err(Error::NotRepresentableInV1 { field: "caveat id" });
            }
            put_packet(&mut out, "cid", &c.id, "caveat id")?;
            if let Some(vid) = &c.verification_id {
                put_packet(&mut out, "vid", vid, "verification id")?;
            }
            if let Some(cl) = &c.location {
                put_packet(&mut out, "cl", cl.as_bytes(), "caveat location")?;
            }
        }
        put_packet(&mut out, "signature", &self.signature, "signature")?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libmacaroons_packets() {
        let mut sig = [0u8; 32];
        sig.copy_from_slice(
            &hex::decode("f54807f6dc6edf88bf0f7306b3822562a362533dbf7339ba61765da4bd259d87")
                .unwrap(),
        );
        let mut want = b"0021location http://example.org/\n0015identifier keyid\n001dcid account = 3735928559\n002fsignature ".to_vec();
        want.extend_from_slice(&sig);
        want.push(b'\n');
        let (m, rest) = decode_prefix(&want, &Limits::default()).unwrap();
        assert!(rest.is_empty());
        assert_eq!(m.location(), "http://example.org/");
        assert_eq!(m.identifier(), b"keyid");
        assert_eq!(m.caveats()[0].id(), b"account = 3735928559");
        assert_eq!(m.signature(), &sig);
        assert_eq!(m.to_binary_v1().unwrap(), want);
        assert!(m.verify_signature(b"this is the key").is_ok());
    }

    #[test]
    fn rejects_bad_packets() {
        let lim = Limits::default();
        assert!(matches!(
            decode_prefix(b"00", &lim),
            Err(Error::BadPacket { offset: 0, .. })
        ));
        assert!(matches!(
            decode_prefix(b"zzzzlocation x\n", &lim),
            Err(Error::BadPacket { offset: 0, .. })
        ));
        assert!(matches!(
            decode_prefix(b"0011identifier x\n", &lim),
            Err(Error::UnexpectedPacket { offset: 0, .. })
        ));
        assert!(matches!(
            decode_prefix(b"0009location\n", &lim),
            Err(Error::BadPacket { offset: 0, .. })
        ));
        assert_eq!(
            decode_prefix(b"000elocation \n0010identifier \n0000", &lim).map(|_| ()),
            Err(Error::BadPacket {
                offset: 30,
                reason: "packet too short"
            })
        );
    }

    #[test]
    fn binary_identifier_is_not_v1() {
        let m = Macaroon::new(b"k", vec![0, 0xff], "");
        assert_eq!(
            m.to_binary_v1(),
            Err(Error::NotRepresentableInV1 {
                field: "identifier"
            })
        );
    }
}
