//! `florence2 label` end to end, on loopback only: the tiny reference model on a folder of
//! generated pictures (some corrupt), the endpoint path against the NVCF test double, shards
//! and their merge, and Ctrl-C. The COCO files are checked here, in Rust, against the schema
//! (ids unique, every reference resolves, boxes and outlines inside their image).

#[path = "../../model/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use nvcf_emulator::{Emulator, Fault};
use serde_json::Value;

fn florence2(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_florence2"))
        .args(args)
        .env_remove("NVIDIA_API_KEY")
        .envs(env.iter().copied())
        .output()
        .expect("running florence2");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("florence2-label-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` pictures with coloured blocks (sizes and formats vary), in `dir` and a subfolder, plus
/// a truncated PNG, a text file named like a JPEG, and a file that is not a picture at all.
/// Returns the keys of the good and of the corrupt ones (paths relative to `dir`), as the CLI
/// records them.
fn pictures(dir: &Path, n: usize) -> (Vec<String>, Vec<String>) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut good = Vec::new();
    for i in 0..n {
        let (w, h) = (96 + 16 * (i as u32 % 3), 64 + 8 * (i as u32 % 4));
        let mut img = RgbImage::from_pixel(w, h, Rgb([240, 240, 240]));
        let colour = [Rgb([220, 30, 30]), Rgb([30, 160, 40]), Rgb([30, 60, 200])][i % 3];
        for y in h / 4..h / 2 + (i as u32 % 5) {
            for x in w / 5..w / 2 + 3 * (i as u32 % 7) {
                img.put_pixel(x, y, colour);
            }
        }
        let name = if i % 2 == 0 {
            format!("p{i:02}.png")
        } else {
            format!("sub/p{i:02}.jpg")
        };
        img.save(dir.join(&name)).unwrap();
        good.push(name);
    }
    let png = std::fs::read(dir.join("p00.png")).unwrap();
    std::fs::write(dir.join("sub/truncated.png"), &png[..png.len() / 3]).unwrap();
    std::fs::write(dir.join("not-really.jpg"), b"this is text, not a JPEG").unwrap();
    std::fs::write(dir.join("readme.txt"), b"not a picture, not walked").unwrap();
    let corrupt = vec!["not-really.jpg".to_owned(), "sub/truncated.png".to_owned()];
    good.sort();
    (good, corrupt)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `key: value` from the CLI's summary.
fn summary(out: &Output, key: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no `{key}:` in the summary:\n{stdout}"))
        .to_owned()
}

/// Checks a COCO document against the schema and its pictures (file names relative to
/// `root`); returns the file names.
fn check_coco(doc: &Value, root: &Path) -> BTreeSet<String> {
    let ids = |list: &str| -> BTreeSet<u64> {
        let items = doc[list]
            .as_array()
            .unwrap_or_else(|| panic!("{list} is not a list"));
        let ids: BTreeSet<u64> = items.iter().map(|i| i["id"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), items.len(), "{list} ids are unique");
        assert!(ids.iter().all(|&id| id >= 1));
        ids
    };
    ids("annotations");
    let category_ids = ids("categories");
    let names: BTreeSet<&str> = doc["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), category_ids.len(), "category names are unique");
    ids("images");
    let mut sizes = BTreeMap::new();
    let mut files = BTreeSet::new();
    for image in doc["images"].as_array().unwrap() {
        let file = image["file_name"].as_str().unwrap();
        let (w, h) = (
            image["width"].as_u64().unwrap(),
            image["height"].as_u64().unwrap(),
        );
        // The size recorded is the picture's own.
        let real = image::image_dimensions(root.join(file)).unwrap();
        assert_eq!((w, h), (u64::from(real.0), u64::from(real.1)), "{file}");
        sizes.insert(image["id"].as_u64().unwrap(), (w as f64, h as f64));
        assert!(files.insert(file.to_owned()), "{file} is listed once");
    }
    let eps = 1e-6;
    for a in doc["annotations"].as_array().unwrap() {
        let (w, h) = sizes[&a["image_id"].as_u64().expect("image_id")];
        assert!(category_ids.contains(&a["category_id"].as_u64().expect("category_id")));
        assert_eq!(a["iscrowd"], 0);
        let b: Vec<f64> = a["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(b.len(), 4);
        assert!(
            b[0] >= -eps && b[1] >= -eps && b[2] >= 0.0 && b[3] >= 0.0,
            "{a}"
        );
        assert!(
            b[0] + b[2] <= w + eps && b[1] + b[3] <= h + eps,
            "{a} inside {w}x{h}"
        );
        let area = a["area"].as_f64().unwrap();
        assert!(area >= 0.0 && area <= b[2] * b[3] + eps, "{a}");
        let rings = a["segmentation"]
            .as_array()
            .expect("a segmentation on every annotation");
        assert!(!rings.is_empty());
        for ring in rings {
            let ring: Vec<f64> = ring
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(ring.len() >= 6 && ring.len().is_multiple_of(2), "{a}");
            for p in ring.chunks(2) {
                assert!(p[0] >= b[0] - eps && p[0] <= b[0] + b[2] + eps, "{a}");
                assert!(p[1] >= b[1] - eps && p[1] <= b[1] + b[3] + eps, "{a}");
            }
        }
    }
    files
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn local_model_labels_a_folder_skips_corrupt_pictures_and_reruns_as_a_no_op() {
    let model = common::reference("florence2-tiny-e2e");
    let dir = scratch("local");
    let (good, corrupt) = pictures(&dir.join("pics"), 6);
    let out = dir.join("od.json");
    let pics = dir.join("pics");
    let args = [
        "label",
        "--task",
        "<OD>",
        "--out",
        out.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--jobs",
        "2",
        "--max-new-tokens",
        "16",
        pics.to_str().unwrap(),
    ];
    let first = florence2(&args, &[]);
    assert_eq!(first.status.code(), Some(1), "some pictures failed: exit 1");
    assert_eq!(summary(&first, "pictures"), "8");
    assert_eq!(summary(&first, "labelled"), "6");
    assert_eq!(summary(&first, "failed"), "2");
    let stdout = String::from_utf8_lossy(&first.stdout);
    for path in &corrupt {
        assert!(
            stdout.contains(&format!("failed {path}: IMAGE_DECODE")),
            "{path} is listed with its code"
        );
    }
    let doc = read_json(&out);
    let files = check_coco(&doc, &pics);
    assert_eq!(
        files,
        good.iter().cloned().collect(),
        "every good picture, no other"
    );
    assert_eq!(doc["info"]["task"], "<OD>");
    let results = dir.join("od.jsonl");
    let records = lines(&results);
    assert_eq!(records.len(), 8, "one line per picture");
    for r in &records {
        let path = r["path"].as_str().unwrap();
        if corrupt.iter().any(|c| c == path) {
            assert_eq!(r["error"]["code"], "IMAGE_DECODE");
            assert!(r.get("result").is_none());
        } else {
            assert_eq!(r["result"]["source"], "local");
            assert_eq!(r["result"]["task"], "<OD>");
        }
    }
    let coco_before = std::fs::read(&out).unwrap();

    // The rerun labels nothing again: only the two failures are retried (and fail again).
    let second = florence2(&args, &[]);
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(summary(&second, "already done"), "6");
    assert_eq!(summary(&second, "labelled"), "0");
    assert_eq!(summary(&second, "failed"), "2");
    let after = lines(&results);
    assert_eq!(
        after.len(),
        10,
        "two retried failures appended, nothing else"
    );
    assert!(after[8..].iter().all(|r| r.get("error").is_some()));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        coco_before,
        "the same COCO file"
    );

    // Without the corrupt ones the rerun is a pure no-op: the model is not even loaded.
    for c in &corrupt {
        std::fs::remove_file(pics.join(c)).unwrap();
    }
    let third = florence2(
        &[&args[..6], &["/nonexistent-model"][..], &args[7..]].concat(),
        &[],
    );
    assert_eq!(
        third.status.code(),
        Some(0),
        "nothing to do, nothing failed"
    );
    assert_eq!(summary(&third, "labelled"), "0");
    assert_eq!(lines(&results).len(), 10, "nothing appended");
    assert_eq!(std::fs::read(&out).unwrap(), coco_before);

    // Another task into the same files is refused, not mixed in.
    let other = florence2(
        &[&["label", "--task", "<CAPTION>"][..], &args[3..]].concat(),
        &[],
    );
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("RESULTS_MISMATCH"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn beams_past_the_cap_are_refused_before_anything_runs() {
    let model = common::reference("florence2-tiny-e2e");
    let dir = scratch("beams");
    pictures(&dir.join("pics"), 1);
    let out = dir.join("od.json");
    let pics = dir.join("pics");
    for beams in ["17", "0"] {
        let run = florence2(
            &[
                "label",
                "--task",
                "<OD>",
                "--out",
                out.to_str().unwrap(),
                "--model",
                model.to_str().unwrap(),
                "--beams",
                beams,
                pics.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(run.status.code(), Some(2), "--beams {beams}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("BAD_OPTION") && stderr.contains("--beams"),
            "{stderr}"
        );
        assert!(
            !out.exists() && !dir.join("od.jsonl").exists(),
            "nothing written"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The NVCF test double on loopback, served from its own runtime.
struct Emu {
    url: String,
    emulator: Emulator,
    _runtime: tokio::runtime::Runtime,
}

fn emulator() -> Emu {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let emulator = Emulator::new(nvcf_emulator::Config::loopback());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(
        emulator
            .clone()
            .serve_until(listener, std::future::pending()),
    );
    Emu {
        url,
        emulator,
        _runtime: runtime,
    }
}

impl Emu {
    fn invokes(&self) -> Vec<Option<String>> {
        self.emulator
            .journal()
            .into_iter()
            .filter(|s| s.method == "POST" && s.path == florence2::request::INVOKE_PATH)
            .map(|s| s.authorization)
            .collect()
    }
}

#[test]
fn endpoint_labels_through_the_nvcf_double_with_retries_and_failures() {
    let emu = emulator();
    let dir = scratch("endpoint");
    let (good, corrupt) = pictures(&dir.join("pics"), 5);
    // One request at a time, in path order: p00 meets a 429 (retried after 0 s, then
    // answered), the next good picture a 500.
    emu.emulator.push_faults([
        Fault {
            status: Some(429),
            retry_after: Some("0".into()),
            ..Fault::default()
        },
        Fault::default(),
        Fault {
            status: Some(500),
            ..Fault::default()
        },
    ]);
    let out = dir.join("od.json");
    let pics = dir.join("pics");
    let args = [
        "label",
        "--task",
        "<OD>",
        "--out",
        out.to_str().unwrap(),
        "--endpoint",
        &emu.url,
        pics.to_str().unwrap(),
    ];
    let key = [("NVIDIA_API_KEY", "nvapi-test")];
    let first = florence2(&args, &key);
    assert_eq!(first.status.code(), Some(1));
    assert_eq!(summary(&first, "labelled"), "4");
    assert_eq!(summary(&first, "failed"), "3");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains(&format!("failed {}: UPSTREAM", good[1])),
        "the 500"
    );
    for c in &corrupt {
        assert!(
            stdout.contains(&format!("failed {c}: IMAGE_DECODE")),
            "{c} fails before any request"
        );
    }
    let invokes = emu.invokes();
    assert_eq!(
        invokes.len(),
        6,
        "5 pictures + 1 retry, none for corrupt files"
    );
    assert!(
        invokes
            .iter()
            .all(|a| a.as_deref() == Some("Bearer nvapi-test"))
    );
    let doc = read_json(&out);
    let files = check_coco(&doc, &pics);
    assert_eq!(files.len(), 4);
    assert!(!files.contains(&good[1]));
    assert!(
        doc["annotations"].as_array().unwrap().len() >= 4,
        "the double finds the blocks"
    );
    assert!(
        lines(&dir.join("od.jsonl"))
            .iter()
            .all(|r| r.get("result").is_none_or(|r| r["source"] == "endpoint"))
    );

    // The rerun, through the full invoke URL, asks only for the failed picture again.
    let full = format!("{}{}", emu.url, florence2::request::INVOKE_PATH);
    let second = florence2(
        &[&args[..6], &[full.as_str()][..], &args[7..]].concat(),
        &key,
    );
    assert_eq!(summary(&second, "already done"), "4");
    assert_eq!(summary(&second, "labelled"), "1");
    assert_eq!(emu.invokes().len(), 7, "one request: the retried failure");
    assert_eq!(check_coco(&read_json(&out), &pics).len(), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shards_split_the_pictures_stably_and_merge_joins_them() {
    let emu = emulator();
    let dir = scratch("shards");
    let (good, _) = pictures(&dir.join("pics"), 9);
    for c in ["pics/not-really.jpg", "pics/sub/truncated.png"] {
        std::fs::remove_file(dir.join(c)).unwrap();
    }
    let key = [("NVIDIA_API_KEY", "nvapi-test")];
    let shard_files = |root: &Path, tag: &str| -> Vec<BTreeSet<String>> {
        (0..3)
            .map(|i| {
                let out = dir.join(format!("{tag}{i}.json"));
                let shard = format!("{i}/3");
                let run = florence2(
                    &[
                        "label",
                        "--task",
                        "<OD>",
                        "--out",
                        out.to_str().unwrap(),
                        "--endpoint",
                        &emu.url,
                        "--jobs",
                        "3",
                        "--shard",
                        &shard,
                        root.to_str().unwrap(),
                    ],
                    &key,
                );
                assert_eq!(run.status.code(), Some(0));
                check_coco(&read_json(&out), root)
            })
            .collect()
    };
    let parts = shard_files(&dir.join("pics"), "part");
    let all: BTreeSet<String> = parts.iter().flatten().cloned().collect();
    assert_eq!(all.len(), good.len(), "every picture in some shard");
    assert_eq!(
        parts.iter().map(BTreeSet::len).sum::<usize>(),
        good.len(),
        "in exactly one"
    );
    assert!(
        parts.iter().filter(|p| !p.is_empty()).count() >= 2,
        "split, not lumped: {parts:?}"
    );
    // The same folder elsewhere (another machine's mount) splits the same way.
    let moved = dir.join("elsewhere");
    std::fs::rename(dir.join("pics"), &moved).unwrap();
    assert_eq!(shard_files(&moved, "moved"), parts);

    let merged = dir.join("merged.json");
    let part_paths: Vec<String> = (0..3)
        .map(|i| {
            dir.join(format!("moved{i}.json"))
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut args = vec!["label", "--merge", merged.to_str().unwrap()];
    args.extend(part_paths.iter().map(String::as_str));
    let run = florence2(&args, &[]);
    assert_eq!(run.status.code(), Some(0));
    let doc = read_json(&merged);
    assert_eq!(check_coco(&doc, &moved).len(), good.len());
    let ids: Vec<u64> = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids,
        (1..=good.len() as u64).collect::<Vec<_>>(),
        "renumbered from 1"
    );
    let part_docs: Vec<Value> = part_paths.iter().map(|p| read_json(Path::new(p))).collect();
    let total: usize = part_docs
        .iter()
        .map(|d| d["annotations"].as_array().unwrap().len())
        .sum();
    assert_eq!(doc["annotations"].as_array().unwrap().len(), total);
    // Each annotation keeps its category by name through the renumbering.
    let name_of = |d: &Value, id: &Value| -> String {
        d["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| &c["id"] == id)
            .unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before: Vec<String> = part_docs
        .iter()
        .flat_map(|d| {
            d["annotations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| name_of(d, &a["category_id"]))
        })
        .collect();
    let after: Vec<String> = doc["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| name_of(&doc, &a["category_id"]))
        .collect();
    assert_eq!(before, after);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_stops_taking_pictures_and_leaves_valid_files() {
    let emu = emulator();
    let dir = scratch("interrupt");
    pictures(&dir.join("pics"), 12);
    for c in ["pics/not-really.jpg", "pics/sub/truncated.png"] {
        std::fs::remove_file(dir.join(c)).unwrap();
    }
    // Every answer takes 400 ms: time to interrupt mid-run.
    emu.emulator.push_faults((0..12).map(|_| Fault {
        delay_ms: 400,
        ..Fault::default()
    }));
    let out = dir.join("od.json");
    let results = dir.join("od.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_florence2"))
        .args([
            "label",
            "--task",
            "<OD>",
            "--out",
            out.to_str().unwrap(),
            "--endpoint",
            &emu.url,
        ])
        .arg(dir.join("pics"))
        .env("NVIDIA_API_KEY", "nvapi-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&results).map_or(0, |s| s.lines().count()) < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(output.status.code(), Some(130));
    let done = lines(&results);
    assert!(
        done.len() >= 2 && done.len() < 12,
        "stopped early: {}",
        done.len()
    );
    assert!(
        done.iter().all(|r| r.get("result").is_some()),
        "in-flight pictures finished"
    );
    assert_eq!(
        summary(&output, "not started"),
        (12 - done.len()).to_string()
    );
    assert_eq!(
        check_coco(&read_json(&out), &dir.join("pics")).len(),
        done.len(),
        "COCO matches the results"
    );
    // The rerun finishes the rest.
    let rest = florence2(
        &[
            "label",
            "--task",
            "<OD>",
            "--out",
            out.to_str().unwrap(),
            "--endpoint",
            &emu.url,
            dir.join("pics").to_str().unwrap(),
        ],
        &[("NVIDIA_API_KEY", "nvapi-test")],
    );
    assert_eq!(rest.status.code(), Some(0));
    assert_eq!(summary(&rest, "labelled"), (12 - done.len()).to_string());
    assert_eq!(check_coco(&read_json(&out), &dir.join("pics")).len(), 12);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A rerun keys on the path inside the folder, not on the folder as typed: the same folder
/// given relative, with `./` and absolute labels each picture once, and the COCO file lists
/// each once. A results file written under the old keys (the path as typed) is taken over,
/// not labelled again beside it.
#[test]
fn the_same_folder_given_three_ways_is_labelled_once() {
    let emu = emulator();
    let dir = scratch("three-ways");
    let (good, _) = pictures(&dir.join("pics"), 4);
    for c in ["pics/not-really.jpg", "pics/sub/truncated.png"] {
        std::fs::remove_file(dir.join(c)).unwrap();
    }
    let key = [("NVIDIA_API_KEY", "nvapi-test")];
    let label = |folder: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_florence2"))
            .args([
                "label",
                "--task",
                "<OD>",
                "--out",
                "od.json",
                "--endpoint",
                &emu.url,
            ])
            .arg(folder)
            .current_dir(&dir)
            .envs(key)
            .output()
            .expect("running florence2");
        println!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{folder}");
        out
    };
    let first = label("pics");
    assert_eq!(summary(&first, "labelled"), "4");
    let absolute = dir.join("pics");
    for again in ["./pics", absolute.to_str().unwrap(), "pics/"] {
        let run = label(again);
        assert_eq!(summary(&run, "already done"), "4", "{again}");
        assert_eq!(summary(&run, "labelled"), "0", "{again}");
    }
    assert_eq!(
        emu.invokes().len(),
        4,
        "one request per picture, in all four runs"
    );
    let files = check_coco(&read_json(&dir.join("od.json")), &absolute);
    assert_eq!(files, good.iter().cloned().collect(), "each picture once");
    assert_eq!(lines(&dir.join("od.jsonl")).len(), 4);

    // A results file of an earlier version, keyed by the path as typed.
    let old: String = lines(&dir.join("od.jsonl"))
        .into_iter()
        .map(|mut r| {
            let path = format!("{}/{}", absolute.display(), r["path"].as_str().unwrap());
            r["path"] = Value::String(path);
            format!("{r}\n")
        })
        .collect();
    std::fs::write(dir.join("od.jsonl"), old).unwrap();
    let run = label("./pics");
    assert_eq!(summary(&run, "already done"), "4");
    assert_eq!(emu.invokes().len(), 4, "nothing labelled again");
    let files = check_coco(&read_json(&dir.join("od.json")), &absolute);
    assert_eq!(
        files,
        good.iter().cloned().collect(),
        "each picture once, under its new key"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
