//! The hosted endpoint's answer: a ZIP holding `<id>.response` (JSON) and, for tasks that draw,
//! an overlay image. Parsed in one pass into the result type, with guards against hostile
//! archives (entry count, total inflated bytes, compression ratio — all enforced while
//! inflating, not trusted from the archive's own headers).

use std::borrow::Cow;
use std::io::{Cursor, Read};

use serde::Deserialize;

use crate::error::{Error, ErrorCode, Result, excerpt};
use crate::postprocess::post_process;
use crate::region::ImageSize;
use crate::result::{Entities, Florence2Result, Source};
use crate::task::{AnswerKind, Task};

/// Limits on an archive. The defaults are generous for real answers (a `.response` of a few
/// hundred KB, an overlay of a few MB) and small enough that a hostile one cannot exhaust a tab.
#[derive(Debug, Clone, Copy)]
pub struct ZipLimits {
    pub max_archive_bytes: usize,
    pub max_entries: usize,
    pub max_total_bytes: u64,
    /// Largest inflated/compressed ratio allowed for an entry (checked once the entry has
    /// inflated past 1 MB, so small, highly compressible JSON is fine).
    pub max_ratio: u64,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_archive_bytes: 64 << 20,
            max_entries: 64,
            max_total_bytes: 128 << 20,
            max_ratio: 200,
        }
    }
}

/// The endpoint's overlay image, travelling beside the result. Stored (uncompressed) entries,
/// as image entries usually are, are borrowed from the archive's bytes without a copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlay<'a> {
    pub name: String,
    pub mime: &'static str,
    pub bytes: Cow<'a, [u8]>,
}

/// How to read an answer: the size of the image that was sent (the coordinates' frame) and of
/// the image the user gave (the result's frame), and the task asked, if known.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext {
    pub original: ImageSize,
    pub sent: ImageSize,
    pub task: Option<Task>,
}

impl ResponseContext {
    pub fn same_size(size: ImageSize) -> Self {
        ResponseContext {
            original: size,
            sent: size,
            task: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedResponse<'a> {
    pub result: Florence2Result,
    pub overlay: Option<Overlay<'a>>,
}

/// Parses the endpoint's ZIP into the result and the overlay.
pub fn parse_zip(
    bytes: &[u8],
    ctx: ResponseContext,
    limits: ZipLimits,
) -> Result<ParsedResponse<'_>> {
    let entries = read_entries(bytes, limits)?;
    let mut response = None;
    let mut overlay = None;
    for (name, data) in entries {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".response") {
            response.get_or_insert(data);
        } else if let Some(mime) = image_mime(&lower)
            && overlay.is_none()
        {
            overlay = Some(Overlay {
                name,
                mime,
                bytes: data,
            });
        }
    }
    let response = response.ok_or_else(|| {
        Error::new(
            ErrorCode::ResponseInvalid,
            "the archive holds no .response file",
        )
    })?;
    let result = parse_response_json(&response, ctx)?;
    Ok(ParsedResponse { result, overlay })
}

fn image_mime(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        _ => return None,
    })
}

fn read_entries(bytes: &[u8], limits: ZipLimits) -> Result<Vec<(String, Cow<'_, [u8]>)>> {
    let too_large = |why: String| Error::new(ErrorCode::ZipTooLarge, why);
    let invalid = |e: zip::result::ZipError| {
        Error::new(
            ErrorCode::ZipInvalid,
            format!("the answer is not a readable ZIP archive: {e}"),
        )
    };
    if bytes.len() > limits.max_archive_bytes {
        return Err(too_large(format!(
            "the archive is {} bytes; at most {} are accepted",
            bytes.len(),
            limits.max_archive_bytes
        )));
    }
    // The end-of-central-directory record states the entry count: refuse a huge archive before
    // the zip crate reads (and allocates for) its whole central directory.
    if let Some(count) = declared_entry_count(bytes).filter(|&n| n > limits.max_entries) {
        return Err(too_large(format!(
            "the archive has {count} entries; at most {} are accepted",
            limits.max_entries
        )));
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(invalid)?;
    if archive.len() > limits.max_entries {
        return Err(too_large(format!(
            "the archive has {} entries; at most {} are accepted",
            archive.len(),
            limits.max_entries
        )));
    }
    let mut total: u64 = 0;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let name = archive
            .name_for_index(i)
            .ok_or_else(|| Error::new(ErrorCode::ZipInvalid, "an entry has no name"))?
            .map_err(invalid)?
            .into_owned();
        let is_image = image_mime(&name.to_ascii_lowercase()).is_some();
        // Images carry their own checksums, checked by the decoder that shows them: a stored
        // image is borrowed as it lies in the archive (no CRC pass, no copy of a megabyte).
        let mut file = archive
            .by_index_with_options(i, zip::ZipReadOptions::new().ignore_crc32(is_image))
            .map_err(invalid)?;
        if file.is_dir() {
            continue;
        }
        if is_image && file.compression() == zip::CompressionMethod::Stored {
            let start = file.data_start().and_then(|s| usize::try_from(s).ok());
            let range =
                start.and_then(|s| Some(s..s.checked_add(usize::try_from(file.size()).ok()?)?));
            let data = range.and_then(|r| bytes.get(r)).ok_or_else(|| {
                Error::new(
                    ErrorCode::ZipInvalid,
                    format!("entry {name:?} lies outside the archive"),
                )
            })?;
            total += data.len() as u64;
            if total > limits.max_total_bytes {
                return Err(too_large(format!(
                    "the archive inflates to more than {} bytes",
                    limits.max_total_bytes
                )));
            }
            out.push((name, Cow::Borrowed(data)));
            continue;
        }
        let compressed = file.compressed_size().max(1);
        let budget = limits.max_total_bytes - total;
        let mut data = Vec::with_capacity(file.size().min(budget).min(16 << 20) as usize);
        // Inflate in chunks and check as we go: the sizes in the headers may lie, and a bomb
        // must be stopped after a megabyte or so, not after the whole budget.
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            let n = file.read(&mut chunk).map_err(|e| {
                Error::new(
                    ErrorCode::ZipInvalid,
                    format!("entry {name:?} cannot be inflated: {e}"),
                )
            })?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&chunk[..n]);
            let read = data.len() as u64;
            if read > budget {
                return Err(too_large(format!(
                    "the archive inflates to more than {} bytes",
                    limits.max_total_bytes
                )));
            }
            if read > (1 << 20) && read / compressed > limits.max_ratio {
                return Err(too_large(format!(
                    "entry {name:?} inflates more than {}x",
                    limits.max_ratio
                )));
            }
        }
        let read = data.len() as u64;
        total += read;
        out.push((name, Cow::Owned(data)));
    }
    Ok(out)
}

/// The total entry count the end-of-central-directory record states (or, for ZIP64 archives,
/// the ZIP64 record its locator points to); `None` when the records cannot be found, in which
/// case the zip crate decides.
fn declared_entry_count(bytes: &[u8]) -> Option<usize> {
    const EOCD_LEN: usize = 22;
    const LOCATOR_LEN: usize = 20;
    let search_from = bytes.len().saturating_sub(EOCD_LEN + usize::from(u16::MAX));
    let eocd = bytes[search_from..]
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")?
        + search_from;
    let count = u16::from_le_bytes(bytes.get(eocd + 10..eocd + 12)?.try_into().ok()?);
    if count != u16::MAX {
        return Some(usize::from(count));
    }
    let locator = bytes.get(eocd.checked_sub(LOCATOR_LEN)?..eocd)?;
    if &locator[..4] != b"PK\x06\x07" {
        return None;
    }
    let record = usize::try_from(u64::from_le_bytes(locator[8..16].try_into().ok()?)).ok()?;
    let record = bytes.get(record..record.checked_add(40)?)?;
    if &record[..4] != b"PK\x06\x06" {
        return None;
    }
    usize::try_from(u64::from_le_bytes(record[32..40].try_into().ok()?)).ok()
}

#[derive(Deserialize)]
struct ResponseJson {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    entities: Option<Entities>,
}

/// Reads a `.response` document into the result (coordinates scaled from the sent image to
/// the original).
pub fn parse_response_json(json: &[u8], ctx: ResponseContext) -> Result<Florence2Result> {
    let invalid = |why: String| Error::new(ErrorCode::ResponseInvalid, why);
    let doc: ResponseJson = serde_json::from_slice(json)
        .map_err(|e| invalid(format!("the .response is not the expected JSON: {e}")))?;
    let choice = doc
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| invalid("the .response has no choices".into()))?;
    let content = choice.message.content.unwrap_or_default();
    let (task, text) = match Task::split_prompt(&content) {
        Ok((task, rest)) => (task, rest),
        Err(_) => match ctx.task {
            Some(task) => (task, content.as_str()),
            None => {
                return Err(invalid(format!(
                    "the answer {:?} does not start with a task token",
                    excerpt(&content)
                )));
            }
        },
    };
    if let Some(expected) = ctx.task.filter(|t| *t != task) {
        return Err(invalid(format!(
            "asked for {expected} but the answer is for {task}"
        )));
    }
    ctx.sent.check_nonzero()?;
    ctx.original.check_nonzero()?;
    let mut entities = match choice.message.entities {
        Some(e) => e,
        // Without entities, the coordinates can still be in the text as <loc_…> tokens.
        None if task.answer_kind() != AnswerKind::PureText => {
            post_process(task, text, ctx.sent)?.entities
        }
        None => Entities::default(),
    };
    check_entities(&entities)?;
    if ctx.sent != ctx.original {
        entities.scale(
            f64::from(ctx.original.width) / f64::from(ctx.sent.width),
            f64::from(ctx.original.height) / f64::from(ctx.sent.height),
        );
    }
    Ok(Florence2Result {
        task: task.token().to_owned(),
        text: text.trim().to_owned(),
        entities,
        image: ctx.original,
        source: Source::Endpoint,
        usage: doc.usage,
    })
}

/// Coordinates must be finite and labels must pair with what they label.
fn check_entities(e: &Entities) -> Result<()> {
    let invalid = |why: &str| {
        Err(Error::new(
            ErrorCode::ResponseInvalid,
            format!("entities: {why}"),
        ))
    };
    let finite = |v: &[f64]| v.iter().all(|c| c.is_finite());
    if !e.bboxes.iter().flatten().all(|b| finite(b))
        || !e.quad_boxes.iter().flatten().all(|q| finite(q))
    {
        return invalid("a coordinate is not a finite number");
    }
    if !e
        .polygons
        .iter()
        .flatten()
        .flatten()
        .all(|ring| finite(ring) && ring.len() % 2 == 0)
    {
        return invalid("a polygon ring has a non-finite coordinate or an odd count");
    }
    let pairs = |things: Option<usize>, labels: &Option<Vec<String>>| match (things, labels) {
        (Some(n), Some(l)) => n == l.len(),
        _ => true,
    };
    if !pairs(e.bboxes.as_ref().map(Vec::len), &e.bboxes_labels) {
        return invalid("bboxes_labels and bboxes differ in length");
    }
    if !pairs(e.polygons.as_ref().map(Vec::len), &e.polygons_labels) {
        return invalid("polygons_labels and polygons differ in length");
    }
    Ok(())
}
