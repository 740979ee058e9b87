//! The endpoint's JSON body, validated by florence2 (one user message; a known task, its text,
//! one image inline or as an asset), and offered by the backend: NVIDIA's endpoint lacks
//! `<REGION_TO_OCR>`, the local model runs every task (`all_tasks`).

use florence2::request::{Invocation, parse_invoke_body};
use florence2::{Error, ErrorCode, Result};

pub fn parse(body: &[u8], all_tasks: bool) -> Result<Invocation> {
    let invocation = parse_invoke_body(body)?;
    if !all_tasks && !invocation.prompt.task.on_endpoint() {
        return Err(Error::new(
            ErrorCode::UnknownTask,
            format!(
                "{} is not offered by NVIDIA's endpoint (only the local model runs it)",
                invocation.prompt.task
            ),
        ));
    }
    // The image source as the content will be rebuilt upstream.
    invocation
        .prompt
        .endpoint_content(&invocation.image.src())?;
    Ok(invocation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use florence2::Task;
    use serde_json::json;

    fn body(content: &str) -> Vec<u8> {
        json!({"messages": [{"role": "user", "content": content}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn every_endpoint_task_parses_back_inline_and_as_asset() {
        for &task in Task::ENDPOINT {
            let text = match task.text_kind() {
                florence2::TextKind::None => None,
                florence2::TextKind::Required => Some("a red car"),
                florence2::TextKind::Region => Some("<loc_1><loc_2><loc_300><loc_400>"),
            };
            for src in [
                "data:image/jpeg;base64,/9j/4AAQ",
                "data:image/png;asset_id,3fa85f64-5717",
            ] {
                let content = florence2::build_content(task.token(), text, src).unwrap();
                let invocation = parse(&body(&content), false).unwrap();
                assert_eq!(invocation.prompt.task, task);
                assert_eq!(
                    invocation
                        .prompt
                        .endpoint_content(&invocation.image.src())
                        .unwrap(),
                    content
                );
            }
        }
    }

    #[test]
    fn the_local_only_task_is_refused() {
        let content =
            "<REGION_TO_OCR><loc_1><loc_1><loc_2><loc_2><img src=\"data:image/png;base64,AA==\" />";
        assert_eq!(
            parse(&body(content), false).unwrap_err().code,
            ErrorCode::UnknownTask
        );
        let local = parse(&body(content), true).unwrap();
        assert_eq!(local.prompt.task, Task::RegionToOcr);
    }
}
