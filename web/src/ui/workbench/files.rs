//! The JS boundary of a batch's files: a drop's files, folders walked (the File and Directory
//! Entries API, which only JS reaches comfortably), each with its path in the drop.

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{DataTransfer, File};

#[wasm_bindgen(inline_js = r#"
export function filesOfDrop(data) {
  const entries = [...(data.items ?? [])]
    .filter((item) => item.kind === "file")
    .map((item) => item.webkitGetAsEntry?.() ?? null);
  if (!entries.length || entries.some((e) => e === null)) {
    return Promise.resolve([...(data.files ?? [])].map((f) => [f.name, f]));
  }
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      return [[prefix + entry.name, file]];
    }
    const reader = entry.createReader();
    const children = [];
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      children.push(...batch);
    }
    const nested = await Promise.all(children.map((c) => walk(c, prefix + entry.name + "/")));
    return nested.flat();
  };
  return Promise.all(entries.map((e) => walk(e, ""))).then((lists) => lists.flat());
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = filesOfDrop)]
    fn files_of_drop(data: &DataTransfer) -> Promise;
}

/// Every file of a drop, folders walked: `(path in the drop, file)`, in the drop's order.
pub async fn dropped_files(data: &DataTransfer) -> Result<Vec<(String, File)>, JsValue> {
    let list: Array = JsFuture::from(files_of_drop(data)).await?.unchecked_into();
    Ok(list
        .iter()
        .filter_map(|pair| {
            let pair: Array = pair.unchecked_into();
            let path = pair.get(0).as_string()?;
            let file = pair.get(1).dyn_into::<File>().ok()?;
            Some((path, file))
        })
        .collect())
}
