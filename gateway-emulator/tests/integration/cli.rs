use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gateway-emulator")
}

#[test]
fn prints_listening_line_first_and_serves() {
    let mut child = Command::new(bin())
        .args(["--listen", "127.0.0.1:0", "--terminal", "pk_cli:cli_secret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let base = line.trim().trim_start_matches("listening on ").to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/test"))
            .basic_auth("pk_cli", Some("cli_secret"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn cryptogram_subcommand_prints_packets() {
    let out = Command::new(bin())
        .args([
            "cryptogram",
            "--card",
            "4111111111111111",
            "--exp",
            "12/30",
            "--scenario",
            "decline-5051",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "EMU1:4111111111111111:12/30:123:decline-5051"
    );
    let out = Command::new(bin())
        .args([
            "cryptogram",
            "--card",
            "4242424242424242",
            "--exp",
            "01/31",
            "--format",
            "legacy",
        ])
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.starts_with("0142424242423101"), "{s}");
    let out = Command::new(bin())
        .args(["cryptogram", "--scenario", "nonsense"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
