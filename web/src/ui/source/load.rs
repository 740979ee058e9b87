//! From bytes to a shown picture: florence2's sniffing refuses what cannot be sent (not an
//! image, truncated, over 50 megapixels) before anything is decoded, then the browser decodes
//! it with its EXIF orientation, which gives the frame the answers' coordinates refer to.

use std::sync::Arc;

use florence2::browser::describe;
use florence2::image_prep::{PrepareOptions, sniff};
use florence2::{Error, ErrorCode, ImageSize};
use gloo_net::http::Request;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, DataTransfer, File};

use crate::messages::Problem;
use crate::ui::dom::{ObjectUrl, blob_bytes, blob_of, decode};
use crate::ui::state::{AppState, Picture};

async fn picture_of(bytes: Vec<u8>, name: String) -> Result<Picture, Error> {
    let info = sniff(&bytes, &PrepareOptions::default())?;
    let unreadable = |e: JsValue| {
        Error::new(
            ErrorCode::ImageDecode,
            format!(
                "the browser cannot decode this {}: {}",
                info.format.mime(),
                describe(&e)
            ),
        )
    };
    let blob = blob_of(&bytes, info.format.mime()).map_err(unreadable)?;
    let bitmap = decode(&blob, None).await.map_err(unreadable)?;
    let size = ImageSize::new(bitmap.width(), bitmap.height());
    bitmap.close();
    let url = ObjectUrl::new(&blob).map_err(unreadable)?;
    Ok(Picture {
        name,
        bytes: bytes.into(),
        url: Arc::new(url),
        size,
    })
}

/// Checks and shows the picture in `bytes`, or says why it cannot be used.
pub async fn open_bytes(state: AppState, bytes: Vec<u8>, name: String) {
    match picture_of(bytes, name).await {
        Ok(picture) => state.show_picture(picture),
        Err(e) => state.fail(state.problem_of(&e)),
    }
}

/// A file or blob (picker, drop, paste, camera).
pub fn open_blob(state: AppState, blob: Blob, name: String) {
    spawn_local(async move {
        match blob_bytes(&blob).await {
            Ok(bytes) => open_bytes(state, bytes, name).await,
            Err(e) => state.fail(state.problem_of(&Error::new(
                ErrorCode::ImageDecode,
                format!("the file cannot be read: {}", describe(&e)),
            ))),
        }
    });
}

/// The first picture in a drop or paste: a file, or else a URL (text/uri-list or plain text).
/// Returns whether there was anything to open.
pub fn open_data_transfer(state: AppState, data: &DataTransfer) -> bool {
    if let Some(file) = data.files().and_then(|files| files.get(0)) {
        let name = file.name();
        open_blob(state, file.unchecked_into::<Blob>(), name);
        return true;
    }
    let url = ["text/uri-list", "text/plain"]
        .iter()
        .filter_map(|kind| data.get_data(kind).ok())
        .flat_map(|text| {
            text.lines()
                .map(str::trim)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|line| line.starts_with("http://") || line.starts_with("https://"));
    match url {
        Some(url) => {
            open_url(state, url);
            true
        }
        None => false,
    }
}

/// Fetches a picture by URL (the site must allow other pages to read it: CORS).
pub fn open_url(state: AppState, url: String) {
    spawn_local(async move {
        let fetched = match Request::get(&url).send().await {
            Ok(r) if r.ok() => r.binary().await.map_err(|e| e.to_string()),
            Ok(r) => Err(format!(
                "the site answered HTTP {} {}",
                r.status(),
                r.status_text()
            )),
            Err(e) => Err(format!(
                "the site does not let this page read it, or cannot be reached ({e})"
            )),
        };
        match fetched {
            Ok(bytes) => {
                let name = url
                    .split(['?', '#'])
                    .next()
                    .and_then(|p| p.rsplit('/').next())
                    .filter(|n| !n.is_empty())
                    .unwrap_or("picture");
                open_bytes(state, bytes, name.to_owned()).await;
            }
            Err(why) => state.fail(Problem::image_url(why)),
        }
    });
}

/// A file from `<input type=file>`.
pub fn open_file(state: AppState, file: File) {
    let name = file.name();
    open_blob(state, file.unchecked_into::<Blob>(), name);
}
