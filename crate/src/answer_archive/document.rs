//! The `.response` document, in the endpoint's shape (see `nim-api.md`):
//! `{"id","choices":[{"index":0,"message":{"role":"assistant","content","entities"}}],"usage"}`.

use serde_json::{Value, json};

use crate::result::Entities;

/// The `.response` JSON. `content` is the task token followed by the answer text, as the
/// endpoint sends it; `usage` is its token counts object.
pub fn response_json(id: &str, content: &str, entities: &Entities, usage: Value) -> Value {
    json!({
        "id": id,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "entities": entities},
        }],
        "usage": usage,
    })
}
