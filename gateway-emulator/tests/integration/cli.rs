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

/// Every setting, as `--help` must list it: variable and default.
const SETTINGS: [(&str, Option<&str>); 8] = [
    ("EMULATOR_LISTEN", Some("127.0.0.1:8090")),
    (
        "EMULATOR_TERMINALS",
        Some("pk_test_emulator:emulator_secret"),
    ),
    ("EMULATOR_STATE_FILE", Some("in memory")),
    ("EMULATOR_ACS_AUTO_SUBMIT", Some("false")),
    ("EMULATOR_MAX_CONCURRENT", Some("30")),
    ("EMULATOR_THREE_DS_TTL_SECS", Some("1200")),
    ("EMULATOR_PUBLIC_BASE_URL", Some("http://<bound address>")),
    ("EMULATOR_LOG", Some("info")),
];

#[test]
fn help_lists_every_variable_and_default_but_no_secret() {
    let out = Command::new(bin())
        .arg("--help")
        .env("EMULATOR_TERMINALS", "pk_x:very-secret-value")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (var, default) in SETTINGS {
        let line = help
            .lines()
            .find(|l| l.contains(var))
            .unwrap_or_else(|| panic!("{var} missing from --help:\n{help}"));
        if let Some(d) = default {
            assert!(line.contains(&format!("[default: {d}]")), "{line}");
        }
    }
    assert!(!help.contains("very-secret-value"), "{help}");
}

#[test]
fn a_bad_value_stops_start_up_naming_the_variable() {
    for (var, bad) in [
        ("EMULATOR_LISTEN", "nowhere"),
        ("EMULATOR_TERMINALS", "pk_x:very-secret-value,no-colon"),
        ("EMULATOR_ACS_AUTO_SUBMIT", "yes"),
        ("EMULATOR_MAX_CONCURRENT", "0"),
        ("EMULATOR_THREE_DS_TTL_SECS", "soon"),
        ("EMULATOR_PUBLIC_BASE_URL", "localhost:8090"),
        ("EMULATOR_LOG", "info,["),
    ] {
        let out = Command::new(bin())
            .env(var, bad)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={bad}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(var), "{var}={bad}: {err}");
        assert!(!err.contains("very-secret-value"), "{err}");
    }
}

#[test]
fn booleans_take_true_or_false() {
    for value in ["true", "false"] {
        let mut child = Command::new(bin())
            .args(["--listen", "127.0.0.1:0"])
            .env("EMULATOR_ACS_AUTO_SUBMIT", value)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = first_line(&mut child);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(line.starts_with("listening on http://"), "{value}: {line}");
    }
}

fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    BufReader::new(stdout).read_line(&mut line).unwrap();
    line
}
