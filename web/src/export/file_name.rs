//! Names for downloaded files: `street-od.json`, `street-od-coco.json`, `street-od.png`.

/// `{stem of the picture}-{task}{suffix}.{extension}`, in safe lowercase ASCII.
pub fn download_name(picture: &str, task: &str, suffix: &str, extension: &str) -> String {
    let base = picture.rsplit(['/', '\\']).next().unwrap_or(picture);
    let stem = base.rsplit_once('.').map_or(base, |(stem, _)| stem);
    let stem = slug(stem, 40);
    let stem = if stem.is_empty() {
        "picture".to_owned()
    } else {
        stem
    };
    format!("{stem}-{}{suffix}.{extension}", slug(task, 40))
}

/// Letters and digits kept (lowercased), every other run of characters one `-`.
fn slug(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= max {
            break;
        }
    }
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_say_what_they_hold() {
        assert_eq!(
            download_name("Street View.JPG", "<OD>", "", "json"),
            "street-view-od.json"
        );
        assert_eq!(
            download_name("street.jpg", "<OCR_WITH_REGION>", "-coco", "json"),
            "street-ocr-with-region-coco.json"
        );
        assert_eq!(
            download_name("../../etc/passwd", "<CAPTION>", "", "png"),
            "passwd-caption.png"
        );
        assert_eq!(
            download_name("写真.png", "<OD>", "", "png"),
            "picture-od.png"
        );
        assert_eq!(download_name("", "<OD>", "", "png"), "picture-od.png");
        assert_eq!(
            download_name("C:\\photos\\cat.v2.jpeg", "<OD>", "", "png"),
            "cat-v2-od.png"
        );
        assert_eq!(
            download_name(&"a".repeat(500), "<OD>", "", "png").len(),
            "-od.png".len() + 40
        );
    }
}
