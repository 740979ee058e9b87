//! Taking a picture with the camera, where the browser offers one (secure pages only): a
//! preview in a modal dialog, one button to take the picture.

use florence2::browser::describe;
use js_sys::Reflect;
use leptos::html::{Dialog, Video};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaStream, MediaStreamConstraints};

use crate::messages::Problem;
use crate::ui::dom::{canvas_blob, context_2d, new_canvas};
use crate::ui::source::load::open_blob;
use crate::ui::state::AppState;

fn camera_available() -> bool {
    web_sys::window().is_some_and(|w| {
        Reflect::get(&w.navigator(), &JsValue::from_str("mediaDevices"))
            .is_ok_and(|d| !d.is_undefined())
    })
}

async fn start_camera() -> Result<MediaStream, JsValue> {
    let devices = web_sys::window()
        .ok_or_else(|| JsValue::from_str("no window"))?
        .navigator()
        .media_devices()?;
    let constraints = MediaStreamConstraints::new();
    // The back camera on phones, any camera elsewhere.
    let video = js_sys::Object::new();
    Reflect::set(
        &video,
        &JsValue::from_str("facingMode"),
        &JsValue::from_str("environment"),
    )?;
    constraints.set_video(&video);
    constraints.set_audio(&JsValue::FALSE);
    Ok(
        JsFuture::from(devices.get_user_media_with_constraints(&constraints)?)
            .await?
            .unchecked_into(),
    )
}

fn stop(stream: Option<MediaStream>) {
    for track in stream.iter().flat_map(|s| s.get_tracks()) {
        track.unchecked_into::<web_sys::MediaStreamTrack>().stop();
    }
}

#[component]
pub fn CameraButton(state: AppState) -> impl IntoView {
    let dialog = NodeRef::<Dialog>::new();
    let video = NodeRef::<Video>::new();
    let stream = StoredValue::new_local(None::<MediaStream>);
    let (ready, set_ready) = signal(false);
    let close = move || {
        stop(stream.get_value());
        stream.set_value(None);
        set_ready.set(false);
        if let Some(d) = dialog.get_untracked() {
            d.close();
        }
    };
    let open = move |_| {
        spawn_local(async move {
            match start_camera().await {
                Ok(s) => {
                    stream.set_value(Some(s.clone()));
                    if let (Some(d), Some(v)) = (dialog.get_untracked(), video.get_untracked()) {
                        v.set_src_object(Some(&s));
                        let _ = d.show_modal();
                        // Awaited so that a refusal to play is handled, not left unhandled.
                        if let Ok(playing) = v.play() {
                            let _ = JsFuture::from(playing).await;
                        }
                    }
                }
                Err(e) => state.fail(Problem::camera(describe(&e))),
            }
        });
    };
    let take = move |_| {
        let Some(v) = video.get_untracked() else {
            return;
        };
        let (w, h) = (v.video_width(), v.video_height());
        spawn_local(async move {
            let shot = async {
                let canvas = new_canvas(w, h)?;
                context_2d(&canvas)?.draw_image_with_html_video_element(&v, 0.0, 0.0)?;
                canvas_blob(&canvas, "image/jpeg").await
            };
            match shot.await {
                Ok(blob) => open_blob(state, blob, "camera.jpg".into()),
                Err(e) => state.fail(Problem::camera(describe(&e))),
            }
            close();
        });
    };
    camera_available().then(|| {
        view! {
            <button type="button" class="button" on:click=open>
                <svg viewBox="0 0 24 24" class="icon" aria-hidden="true"><path d="M4 8h3l2-3h6l2 3h3v11H4z"/><circle cx="12" cy="13" r="3.5"/></svg>
                "Camera"
            </button>
            <dialog node_ref=dialog class="camera" aria-labelledby="camera-title" on:close=move |_| close()>
                <h2 id="camera-title">"Camera"</h2>
                <video node_ref=video autoplay=true playsinline=true muted=true on:loadeddata=move |_| set_ready.set(true)></video>
                <div class="row">
                    <button type="button" class="button primary" disabled=move || !ready.get() on:click=take>"Take picture"</button>
                    <button type="button" class="button ghost" on:click=move |_| close()>"Cancel"</button>
                </div>
            </dialog>
        }
    })
}
