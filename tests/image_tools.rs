//! The technician's image tools: `image/flash` against real block devices (loop devices over files here), and the
//! provisioning template the README points to. The image build and its qemu boot test take minutes and run by
//! `image/build amd64 && image/test-boot` (see the README).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_medimitra");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).map(|i| i + start.len()).expect("start marker");
    &text[from..from + text[from..].find(end).expect("end marker")]
}

fn flash(args: &[&str]) -> Output {
    run(repo().join("image/flash").to_str().unwrap(), args)
}

/// A loop device over a file, detached on drop.
struct Loop {
    dev: String,
    _file: tempfile::NamedTempFile,
}

impl Loop {
    fn new(bytes: u64) -> Loop {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(bytes).unwrap();
        let out = run("losetup", &["--find", "--show", file.path().to_str().unwrap()]);
        assert!(out.status.success(), "losetup: {}", text(&out));
        Loop { dev: String::from_utf8_lossy(&out.stdout).trim().to_string(), _file: file }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run("losetup", &["--detach", &self.dev]);
    }
}

/// A small disk image like the real one: GPT, a file system with files, unmapped space; its .bmap, a zstd copy and
/// SHA256SUMS.
fn small_image(dir: &Path) -> PathBuf {
    let img = dir.join("medimitra-test-amd64.img");
    let content = dir.join("content");
    std::fs::create_dir_all(&content).unwrap();
    let noise: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(content.join("payload.bin"), noise).unwrap();
    let fs = dir.join("fs.img");
    let ok = |o: Output| assert!(o.status.success(), "{}", text(&o));
    ok(run("mkfs.ext4", &["-q", "-F", "-d", content.to_str().unwrap(), fs.to_str().unwrap(), "16M"]));
    ok(run("truncate", &["-s", "40M", img.to_str().unwrap()]));
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", img.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    sfdisk.stdin.take().unwrap().write_all(b"label: gpt\nstart=2048, size=32768, name=\"data\"\n").unwrap();
    assert!(sfdisk.wait().unwrap().success());
    ok(run(
        "dd",
        &[&format!("if={}", fs.display()), &format!("of={}", img.display()), "bs=1M", "seek=1", "conv=notrunc,sparse"],
    ));
    let bmap = dir.join("medimitra-test-amd64.bmap");
    ok(run("bmaptool", &["create", "-o", bmap.to_str().unwrap(), img.to_str().unwrap()]));
    ok(run("zstd", &["-q", "-f", img.to_str().unwrap()]));
    let sums = Command::new("sha256sum")
        .current_dir(dir)
        .args(["medimitra-test-amd64.img.zst", "medimitra-test-amd64.bmap"])
        .output()
        .unwrap();
    assert!(sums.status.success());
    std::fs::write(dir.join("SHA256SUMS"), &sums.stdout).unwrap();
    img
}

#[test]
fn flash_writes_and_verifies_an_image_onto_a_whole_disk() {
    let dir = tempfile::tempdir().unwrap();
    let img = small_image(dir.path());
    let zst = dir.path().join("medimitra-test-amd64.img.zst");
    let disk = Loop::new(64 * 1024 * 1024);
    // Garbage on the disk first: the written blocks must match the image afterwards.
    let _ = run("dd", &["if=/dev/urandom", &format!("of={}", disk.dev), "bs=1M", "count=40", "status=none"]);

    let out = flash(&["--yes", zst.to_str().unwrap(), &disk.dev]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SHA256SUMS: OK"), "{said}");
    assert!(said.contains("Copy your medimitra-provision.toml"), "{said}");
    // Every block the map lists arrived intact (bmaptool writes only those: the rest of the disk keeps its noise).
    let image = std::fs::read(&img).unwrap();
    let mut written = vec![0u8; image.len()];
    use std::io::Read;
    std::fs::File::open(&disk.dev).unwrap().read_exact(&mut written).unwrap();
    let map = std::fs::read_to_string(dir.path().join("medimitra-test-amd64.bmap")).unwrap();
    let block: usize = between(&map, "<BlockSize>", "</BlockSize>").trim().parse().unwrap();
    let mut checked = 0;
    for range in map.split("<Range").skip(1) {
        let span = between(range, ">", "</Range>");
        let (a, b) = span.split_once('-').unwrap_or((span, span));
        let (a, b): (usize, usize) = (a.trim().parse().unwrap(), b.trim().parse().unwrap());
        let (from, to) = (a * block, (b + 1) * block);
        assert!(written[from..to] == image[from..to], "blocks {a}-{b} differ after flashing");
        checked += to - from;
    }
    assert!(checked > 3_000_000, "only {checked} bytes mapped");

    // A corrupted image is caught: SHA256SUMS first, and bmaptool's block checksums without it.
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[1024 * 1024 + 600_000] ^= 0xff;
    std::fs::write(&img, &bytes).unwrap();
    let out = flash(&["--yes", img.to_str().unwrap(), &disk.dev]);
    assert!(!out.status.success(), "a corrupted image was written: {}", text(&out));
    assert!(text(&out).to_lowercase().contains("checksum"), "{}", text(&out));
}

#[test]
fn flash_refuses_what_it_must_not_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    small_image(dir.path());
    let zst = dir.path().join("medimitra-test-amd64.img.zst");
    let zst = zst.to_str().unwrap();

    // Not a block device.
    let file = dir.path().join("not-a-disk");
    std::fs::write(&file, b"").unwrap();
    let out = flash(&["--yes", zst, file.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("is not a block device"), "{}", text(&out));

    // The disk the running system lives on.
    let root = run("findmnt", &["-no", "SOURCE", "/"]);
    let root = String::from_utf8_lossy(&root.stdout).trim().to_string();
    let system_disk = run("lsblk", &["-nso", "NAME,TYPE", &root]);
    let system_disk = String::from_utf8_lossy(&system_disk.stdout)
        .lines()
        .filter(|l| l.ends_with(" disk"))
        .map(|l| {
            format!("/dev/{}", l.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).split(' ').next().unwrap())
        })
        .next()
        .expect("the system disk");
    let out = flash(&["--yes", zst, &system_disk]);
    assert!(!out.status.success() && text(&out).contains("holds the running system"), "{system_disk}: {}", text(&out));

    // A disk with a mounted file system.
    let disk = Loop::new(32 * 1024 * 1024);
    assert!(run("mkfs.ext4", &["-q", &disk.dev]).status.success());
    let mnt = tempfile::tempdir().unwrap();
    let mount = run("mount", &[&disk.dev, mnt.path().to_str().unwrap()]);
    assert!(mount.status.success(), "{}", text(&mount));
    let out = flash(&["--yes", zst, &disk.dev]);
    let _ = run("umount", &[mnt.path().to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("has mounted partitions"), "{}", text(&out));

    // Without --yes, a wrong answer writes nothing.
    let out = Command::new(repo().join("image/flash"))
        .args([zst, &disk.dev])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out).contains("not confirmed"), "{}", text(&out));

    // An image without its block map.
    std::fs::remove_file(dir.path().join("medimitra-test-amd64.bmap")).unwrap();
    let out = flash(&["--yes", zst, &disk.dev]);
    assert!(!out.status.success() && text(&out).contains("no block map"), "{}", text(&out));
}

#[test]
fn the_provisioning_template_is_valid() {
    let template = repo().join("image/medimitra-provision.example.toml");
    let out = Command::new(BIN)
        .args(["--config", "/dev/null", "provision", "--check", template.to_str().unwrap()])
        .env_remove("MEDIMITRA_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(template.exists(), "--check must not remove the file");
}
