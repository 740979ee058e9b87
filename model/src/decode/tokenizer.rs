//! The Florence-2 tokenizer (BART byte-level BPE plus Florence's added tokens) from a
//! `tokenizer.json`, through the `tokenizers` crate.

use crate::error::{Error, Result};

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    pub fn from_bytes(json: &[u8]) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(json)
            .map_err(|e| Error::Tokenizer(format!("cannot load tokenizer.json: {e}")))?;
        Ok(Tokenizer { inner })
    }

    /// Token ids of `text`; with `special`, wrapped in `<s>` … `</s>` as the processor does.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, special)
            .map_err(|e| Error::Tokenizer(format!("cannot encode {text:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`; without `skip_special`, special tokens (`</s>`, `<loc_…>`) are kept,
    /// which post-processing needs.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| Error::Tokenizer(format!("cannot decode {} ids: {e}", ids.len())))
    }

    pub fn id_of(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
