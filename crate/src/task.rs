//! The Florence-2 tasks: their tokens, what text they take, how people call them and the
//! natural-language prompt the model itself is trained on.

use serde::Serialize;

use crate::error::{Error, ErrorCode, Result};

/// What a task accepts after its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextKind {
    /// The token alone.
    None,
    /// Free text is required (a caption, an expression, a category).
    Required,
    /// A region `<loc_x1><loc_y1><loc_x2><loc_y2>` is required.
    Region,
}

/// How the demo groups tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskGroup {
    Captions,
    Detection,
    Grounding,
    Segmentation,
    Regions,
    Ocr,
}

/// How the generated text of a task is parsed (transformers' post-processing types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    PureText,
    Ocr,
    DescriptionWithBboxes,
    Bboxes,
    PhraseGrounding,
    Polygons,
    DescriptionWithBboxesOrPolygons,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    Caption,
    DetailedCaption,
    MoreDetailedCaption,
    ObjectDetection,
    DenseRegionCaption,
    RegionProposal,
    CaptionToPhraseGrounding,
    ReferringExpressionSegmentation,
    RegionToSegmentation,
    OpenVocabularyDetection,
    RegionToCategory,
    RegionToDescription,
    Ocr,
    OcrWithRegion,
    /// Known to the model, not offered by the hosted endpoint.
    RegionToOcr,
}

/// One row of the task table.
struct TaskInfo {
    task: Task,
    token: &'static str,
    label: &'static str,
    description: &'static str,
    text: TextKind,
    group: TaskGroup,
    answer: AnswerKind,
    /// The model's prompt; `{input}` stands for the task's text.
    prompt: &'static str,
    /// Whether NVIDIA's hosted endpoint answers it (the model knows every task).
    endpoint: bool,
}

/// Every task, in the order of [`Task::ALL`] (a test checks it): the one place that says what
/// a task is called, takes, answers and where it runs.
const TABLE: [TaskInfo; 15] = {
    use AnswerKind as A;
    use TaskGroup as G;
    use TextKind as T;
    [
        TaskInfo {
            task: Task::Caption,
            token: "<CAPTION>",
            label: "Caption",
            description: "One sentence about the picture.",
            text: T::None,
            group: G::Captions,
            answer: A::PureText,
            prompt: "What does the image describe?",
            endpoint: true,
        },
        TaskInfo {
            task: Task::DetailedCaption,
            token: "<DETAILED_CAPTION>",
            label: "Detailed caption",
            description: "A few sentences about the picture.",
            text: T::None,
            group: G::Captions,
            answer: A::PureText,
            prompt: "Describe in detail what is shown in the image.",
            endpoint: true,
        },
        TaskInfo {
            task: Task::MoreDetailedCaption,
            token: "<MORE_DETAILED_CAPTION>",
            label: "More detailed caption",
            description: "A paragraph about the picture.",
            text: T::None,
            group: G::Captions,
            answer: A::PureText,
            prompt: "Describe with a paragraph what is shown in the image.",
            endpoint: true,
        },
        TaskInfo {
            task: Task::ObjectDetection,
            token: "<OD>",
            label: "Object detection",
            description: "Boxes around objects, each with its category.",
            text: T::None,
            group: G::Detection,
            answer: A::DescriptionWithBboxes,
            prompt: "Locate the objects with category name in the image.",
            endpoint: true,
        },
        TaskInfo {
            task: Task::DenseRegionCaption,
            token: "<DENSE_REGION_CAPTION>",
            label: "Dense region caption",
            description: "Boxes around regions, each with a short description.",
            text: T::None,
            group: G::Detection,
            answer: A::DescriptionWithBboxes,
            prompt: "Locate the objects in the image, with their descriptions.",
            endpoint: true,
        },
        TaskInfo {
            task: Task::RegionProposal,
            token: "<REGION_PROPOSAL>",
            label: "Region proposal",
            description: "Boxes around everything that could be an object, without labels.",
            text: T::None,
            group: G::Detection,
            answer: A::Bboxes,
            prompt: "Locate the region proposals in the image.",
            endpoint: true,
        },
        TaskInfo {
            task: Task::CaptionToPhraseGrounding,
            token: "<CAPTION_TO_PHRASE_GROUNDING>",
            label: "Phrase grounding",
            description: "Boxes for the phrases of a caption you write.",
            text: T::Required,
            group: G::Grounding,
            answer: A::PhraseGrounding,
            prompt: "Locate the phrases in the caption: {input}",
            endpoint: true,
        },
        TaskInfo {
            task: Task::ReferringExpressionSegmentation,
            token: "<REFERRING_EXPRESSION_SEGMENTATION>",
            label: "Referring expression segmentation",
            description: "A mask for the thing you describe.",
            text: T::Required,
            group: G::Segmentation,
            answer: A::Polygons,
            prompt: "Locate {input} in the image with mask",
            endpoint: true,
        },
        TaskInfo {
            task: Task::RegionToSegmentation,
            token: "<REGION_TO_SEGMENTATION>",
            label: "Region to segmentation",
            description: "A mask for the object inside the rectangle you draw.",
            text: T::Region,
            group: G::Segmentation,
            answer: A::Polygons,
            prompt: "What is the polygon mask of region {input}",
            endpoint: true,
        },
        TaskInfo {
            task: Task::OpenVocabularyDetection,
            token: "<OPEN_VOCABULARY_DETECTION>",
            label: "Open-vocabulary detection",
            description: "Boxes for any object you name.",
            text: T::Required,
            group: G::Grounding,
            answer: A::DescriptionWithBboxesOrPolygons,
            prompt: "Locate {input} in the image.",
            endpoint: true,
        },
        TaskInfo {
            task: Task::RegionToCategory,
            token: "<REGION_TO_CATEGORY>",
            label: "Region to category",
            description: "The category of the object inside the rectangle you draw.",
            text: T::Region,
            group: G::Regions,
            answer: A::PureText,
            prompt: "What is the region {input}?",
            endpoint: true,
        },
        TaskInfo {
            task: Task::RegionToDescription,
            token: "<REGION_TO_DESCRIPTION>",
            label: "Region to description",
            description: "A description of the rectangle you draw.",
            text: T::Region,
            group: G::Regions,
            answer: A::PureText,
            prompt: "What does the region {input} describe?",
            endpoint: true,
        },
        TaskInfo {
            task: Task::Ocr,
            token: "<OCR>",
            label: "OCR",
            description: "The text in the picture.",
            text: T::None,
            group: G::Ocr,
            answer: A::PureText,
            prompt: "What is the text in the image?",
            endpoint: true,
        },
        TaskInfo {
            task: Task::OcrWithRegion,
            token: "<OCR_WITH_REGION>",
            label: "OCR with regions",
            description: "The text in the picture, each line with its quadrilateral.",
            text: T::None,
            group: G::Ocr,
            answer: A::Ocr,
            prompt: "What is the text in the image, with regions?",
            endpoint: true,
        },
        TaskInfo {
            task: Task::RegionToOcr,
            token: "<REGION_TO_OCR>",
            label: "Region to OCR",
            description: "The text inside the rectangle you draw (local model only).",
            text: T::Region,
            group: G::Ocr,
            answer: A::PureText,
            prompt: "What text is in the region {input}?",
            endpoint: false,
        },
    ]
};

/// The endpoint's tasks, read off the table at compile time.
const fn endpoint_tasks<const N: usize>() -> [Task; N] {
    let mut out = [Task::Caption; N];
    let (mut i, mut n) = (0, 0);
    while i < TABLE.len() {
        if TABLE[i].endpoint {
            assert!(
                n < N,
                "more endpoint tasks in TABLE than Task::ENDPOINT holds"
            );
            out[n] = TABLE[i].task;
            n += 1;
        }
        i += 1;
    }
    assert!(
        n == N,
        "fewer endpoint tasks in TABLE than Task::ENDPOINT holds"
    );
    out
}

impl Task {
    /// Every task the model knows (the endpoint's 14 and `<REGION_TO_OCR>`).
    pub const ALL: [Task; 15] = [
        Task::Caption,
        Task::DetailedCaption,
        Task::MoreDetailedCaption,
        Task::ObjectDetection,
        Task::DenseRegionCaption,
        Task::RegionProposal,
        Task::CaptionToPhraseGrounding,
        Task::ReferringExpressionSegmentation,
        Task::RegionToSegmentation,
        Task::OpenVocabularyDetection,
        Task::RegionToCategory,
        Task::RegionToDescription,
        Task::Ocr,
        Task::OcrWithRegion,
        Task::RegionToOcr,
    ];

    /// The 14 tasks the hosted endpoint answers (the table's `endpoint` column), in the order
    /// people meet them.
    pub const ENDPOINT: &'static [Task] = &endpoint_tasks::<14>();

    fn info(self) -> &'static TaskInfo {
        &TABLE[self as usize]
    }

    pub fn token(self) -> &'static str {
        self.info().token
    }

    pub fn label(self) -> &'static str {
        self.info().label
    }

    /// One line for people: what the task gives back.
    pub fn description(self) -> &'static str {
        self.info().description
    }

    pub fn text_kind(self) -> TextKind {
        self.info().text
    }

    pub fn group(self) -> TaskGroup {
        self.info().group
    }

    pub fn answer_kind(self) -> AnswerKind {
        self.info().answer
    }

    /// Whether NVIDIA's hosted endpoint answers this task.
    pub fn on_endpoint(self) -> bool {
        self.info().endpoint
    }

    /// The model's prompt template, `{input}` standing for the task's text.
    pub fn prompt_template(self) -> &'static str {
        self.info().prompt
    }

    /// Parses a task token such as `<OD>`; surrounding whitespace is ignored.
    pub fn from_token(token: &str) -> Result<Task> {
        let token = token.trim();
        Task::ALL
            .into_iter()
            .find(|t| t.token() == token)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UnknownTask,
                    format!(
                        "unknown task {token:?}; expected one of {}",
                        Task::ALL.map(Task::token).join(", ")
                    ),
                )
            })
    }

    /// Splits the task token off the front of a full prompt, `<OD>` or `<OPEN_VOCABULARY_DETECTION>cat`.
    pub fn split_prompt(prompt: &str) -> Result<(Task, &str)> {
        let prompt = prompt.trim_start();
        let end = prompt.find('>').map(|i| i + 1).ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownTask,
                format!("the prompt {prompt:?} does not start with a task token like <OD>"),
            )
        })?;
        Ok((Task::from_token(&prompt[..end])?, &prompt[end..]))
    }
}

/// A task as the JS API and the demo list it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskDescriptor {
    pub token: &'static str,
    pub text: TextKind,
    pub label: &'static str,
    pub group: TaskGroup,
    pub description: &'static str,
}

/// The endpoint's 14 tasks, described.
pub fn endpoint_task_infos() -> Vec<TaskDescriptor> {
    task_infos(Task::ENDPOINT)
}

/// What a proxy whose `/healthz` says `backend` runs: the local model runs every task
/// (`<REGION_TO_OCR>` too), NVIDIA's endpoint its 14.
pub fn tasks_for_backend(backend: Option<&str>) -> &'static [Task] {
    if backend == Some("local") {
        &Task::ALL
    } else {
        Task::ENDPOINT
    }
}

/// `tasks`, described.
pub fn task_infos(tasks: &[Task]) -> Vec<TaskDescriptor> {
    tasks
        .iter()
        .map(|&t| TaskDescriptor {
            token: t.token(),
            text: t.text_kind(),
            label: t.label(),
            group: t.group(),
            description: t.description(),
        })
        .collect()
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_order_of_all() {
        for (i, task) in Task::ALL.into_iter().enumerate() {
            assert_eq!(TABLE[i].task, task, "row {i}");
            assert_eq!(task as usize, i, "{task:?}");
        }
    }

    #[test]
    fn tokens_round_trip_and_are_unique() {
        for task in Task::ALL {
            assert_eq!(Task::from_token(task.token()).unwrap(), task);
        }
        let mut tokens: Vec<_> = Task::ALL.iter().map(|t| t.token()).collect();
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 15);
    }

    #[test]
    fn endpoint_has_fourteen_tasks_without_region_to_ocr() {
        assert_eq!(Task::ENDPOINT.len(), 14);
        assert!(Task::ENDPOINT.iter().all(|t| t.on_endpoint()));
        assert!(!Task::RegionToOcr.on_endpoint());
    }

    #[test]
    fn text_kinds_follow_the_endpoint_docs() {
        let required: Vec<_> = Task::ALL
            .iter()
            .filter(|t| t.text_kind() == TextKind::Required)
            .map(|t| t.token())
            .collect();
        assert_eq!(
            required,
            [
                "<CAPTION_TO_PHRASE_GROUNDING>",
                "<REFERRING_EXPRESSION_SEGMENTATION>",
                "<OPEN_VOCABULARY_DETECTION>"
            ]
        );
        let region: Vec<_> = Task::ALL
            .iter()
            .filter(|t| t.text_kind() == TextKind::Region)
            .map(|t| t.token())
            .collect();
        assert_eq!(
            region,
            [
                "<REGION_TO_SEGMENTATION>",
                "<REGION_TO_CATEGORY>",
                "<REGION_TO_DESCRIPTION>",
                "<REGION_TO_OCR>"
            ]
        );
    }

    #[test]
    fn unknown_tokens_are_typed_errors() {
        for bad in ["", "<od>", "OD", "<OD", "<NOPE>"] {
            assert_eq!(
                Task::from_token(bad).unwrap_err().code,
                ErrorCode::UnknownTask,
                "{bad}"
            );
        }
        assert_eq!(
            Task::split_prompt("no token").unwrap_err().code,
            ErrorCode::UnknownTask
        );
        assert_eq!(
            Task::split_prompt("<OPEN_VOCABULARY_DETECTION>a cat").unwrap(),
            (Task::OpenVocabularyDetection, "a cat")
        );
    }
}
