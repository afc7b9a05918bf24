//! The `charset` parameter: how sign content and form values are encoded.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// A charset Alipay supports. Requests we build are always UTF-8; received
/// forms may be GBK when a merchant once left `charset` out of the query (docs/protocol.md §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    /// `utf-8`.
    #[default]
    Utf8,
    /// `gbk` (and `gb2312`, its subset).
    Gbk,
}

impl Charset {
    /// Parses a `charset` value, case-insensitively.
    ///
    /// # Errors
    /// [`Error::UnsupportedCharset`].
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(Charset::Utf8),
            "gbk" | "gb2312" | "gb18030" => Ok(Charset::Gbk),
            _ => Err(Error::UnsupportedCharset(s.chars().take(16).collect())),
        }
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Charset::Utf8 => "utf-8",
            Charset::Gbk => "gbk",
        }
    }

    /// Encodes text for signing or for the wire.
    pub fn encode(self, s: &str) -> Cow<'_, [u8]> {
        match self {
            Charset::Utf8 => Cow::Borrowed(s.as_bytes()),
            Charset::Gbk => match encoding_rs::GBK.encode(s).0 {
                Cow::Borrowed(b) => Cow::Borrowed(b),
                Cow::Owned(v) => Cow::Owned(v),
            },
        }
    }

    /// Decodes bytes received in this charset; malformed input is an error,
    /// never silently replaced (that would change what the signature covers).
    pub(crate) fn decode_owned(self, b: Vec<u8>) -> Option<String> {
        match self {
            Charset::Utf8 => String::from_utf8(b).ok(),
            Charset::Gbk => self.decode(&b),
        }
    }

    /// Decodes bytes received in this charset (see `decode_owned`); public
    /// only for the fuzz targets (`fuzz/`).
    #[doc(hidden)]
    pub fn decode(self, b: &[u8]) -> Option<String> {
        match self {
            Charset::Utf8 => String::from_utf8(b.to_vec()).ok(),
            Charset::Gbk => {
                // The GBK decoder is GB18030's: its four-byte sequences decode
                // to characters GBK cannot encode, which `encode` would turn
                // into `&#NNNN;` — so "杯😀" would verify against a signature
                // over "杯&#128512;". Only text GBK encodes is GBK.
                let text =
                    encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(b)?;
                let (_, _, unmappable) = encoding_rs::GBK.encode(&text);
                (!unmappable).then(|| text.into_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gbk_text_is_only_what_gbk_encodes_back() {
        assert_eq!(Charset::Gbk.decode(&[0xB1, 0xAD]).as_deref(), Some("杯"));
        assert_eq!(Charset::Gbk.decode(&[0x80]).as_deref(), Some("€"));
        // U+1F600 as GB18030's four bytes: GBK would sign it as `&#128512;`.
        assert_eq!(Charset::Gbk.decode(&[0x94, 0x39, 0xFC, 0x36]), None);
        assert_eq!(Charset::Utf8.decode("😀".as_bytes()).as_deref(), Some("😀"));
    }
}
