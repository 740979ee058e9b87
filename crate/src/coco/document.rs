//! The COCO document as types: what we write, and what `merge` reads back (unknown fields of a
//! foreign file are kept, not dropped, so merging loses nothing).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A COCO file: `info`, `images`, `categories`, `annotations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coco {
    #[serde(default)]
    pub info: Info,
    #[serde(default)]
    pub images: Vec<Image>,
    #[serde(default)]
    pub categories: Vec<Category>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Info {
    #[serde(default)]
    pub description: String,
    /// Anything else (`florence2 label` records its task and source here).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub id: u64,
    pub file_name: String,
    pub width: u32,
    pub height: u32,
    /// A text answer (caption, OCR, region description) in the dataset style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub id: u64,
    pub name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An object annotation (`category_id`, `bbox`, `area`, `iscrowd`, maybe `segmentation` and
/// `utf8_string`) or, in the demo's export of a text answer, a COCO-captions one (`caption`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub id: u64,
    pub image_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<u64>,
    /// Polygons `[[x, y, x, y, …], …]` as we write them; a foreign file's RLE is kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<Value>,
    /// `[x, y, width, height]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iscrowd: Option<u8>,
    /// The text of an OCR region (as COCO-Text does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utf8_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Annotation {
    /// An annotation with only its ids; the builder fills in the rest.
    pub fn new(id: u64, image_id: u64) -> Annotation {
        Annotation {
            id,
            image_id,
            category_id: None,
            segmentation: None,
            bbox: None,
            area: None,
            iscrowd: None,
            utf8_string: None,
            caption: None,
            extra: Map::new(),
        }
    }
}
