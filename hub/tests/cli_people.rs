//! The people commands of `guardian-hub`, driven through the built binary
//! exactly as the contract writes them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use guardian_hub::accounts::Role;
use guardian_hub::clock::SystemClock;
use guardian_hub::{children, Hub};
use uuid::Uuid;

const PASSWORD: &str = "a long enough password";

/// Runs `guardian-hub --data-dir DIR ARGS…` with `stdin` piped in.
fn hub(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_guardian-hub"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed and returns its stdout, trimmed.
fn ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let output = hub(dir, args, stdin);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Runs a command that must succeed and returns what it said on stderr.
fn hub_stderr(dir: &Path, args: &[&str]) -> String {
    let output = hub(dir, args, "");
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn the_people_commands_of_the_contract_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let password = format!("{PASSWORD}\n");

    ok(d, &["classroom", "add", "Sunflowers"], "");
    ok(d, &["classroom", "add", "Daisies"], "");
    let admin = ok(
        d,
        &["admin", "add", "--name", "Alba", "--phone", "+34600000001"],
        &password,
    );
    let teacher = ok(
        d,
        &[
            "teacher",
            "add",
            "--name",
            "Tomás",
            "--phone",
            "+34600000002",
            "--classroom",
            "Sunflowers",
        ],
        &password,
    );
    // The same teacher in a second classroom: allowed, and the password stays.
    let again = ok(
        d,
        &[
            "teacher",
            "add",
            "--name",
            "Tomás",
            "--phone",
            "+34600000002",
            "--classroom",
            "Daisies",
        ],
        "",
    );
    assert_eq!(again, teacher);
    let child = ok(
        d,
        &["child", "add", "--classroom", "Sunflowers", "--name", "Leo"],
        "",
    );
    let child: Uuid = child.parse().expect("child add prints the child's id");
    let parent = ok(
        d,
        &["parent", "add", "--name", "Gina", "--phone", "+34600000003"],
        &password,
    );
    ok(
        d,
        &[
            "guardian",
            "link",
            "--phone",
            "+34600000003",
            "--child",
            &child.to_string(),
        ],
        "",
    );
    // The first version's form still works.
    ok(
        d,
        &[
            "parent",
            "add",
            "--name",
            "Old",
            "--phone",
            "+34600000004",
            "--classroom",
            "Daisies",
        ],
        &password,
    );

    let hub = Hub::open(d, Arc::new(SystemClock)).unwrap();
    let login = |phone: &str| hub.accounts.check_login(phone, PASSWORD).unwrap().unwrap();
    assert_eq!(login("+34600000001").role, Role::Admin);
    assert_eq!(login("+34600000001").id.to_string(), admin);
    assert_eq!(login("+34600000002").role, Role::Teacher);
    assert_eq!(login("+34600000003").role, Role::Guardian);
    let teacher: Uuid = teacher.parse().unwrap();
    assert_eq!(hub.accounts.teacher_classrooms(teacher).unwrap().len(), 2);
    let parent: Uuid = parent.parse().unwrap();
    assert_eq!(children::guardians_of(&hub, child).unwrap(), [parent]);
    assert_eq!(
        hub.accounts.parent(parent).unwrap().unwrap().classroom_id,
        None
    );
    let old = login("+34600000004").id;
    assert!(hub
        .accounts
        .parent(old)
        .unwrap()
        .unwrap()
        .classroom_id
        .is_some());

    // Unlinking ends the link, and unlinking again changes nothing.
    let unlink = [
        "guardian",
        "unlink",
        "--phone",
        "+34600000003",
        "--child",
        &child.to_string(),
    ];
    let said = hub_stderr(d, &unlink);
    assert!(said.contains("unlinked"), "{said}");
    assert!(children::guardians_of(&hub, child).unwrap().is_empty());
    let said = hub_stderr(d, &unlink);
    assert!(said.contains("nothing changed"), "{said}");
    ok(
        d,
        &[
            "guardian",
            "link",
            "--phone",
            "+34600000003",
            "--child",
            &child.to_string(),
        ],
        "",
    );

    // Erasing the child removes the child and the link.
    let said = hub_stderr(d, &["child", "erase", &child.to_string()]);
    assert!(
        said.contains("0 photos in which only they were named removed")
            && said.contains("0 consent decisions and 1 guardian link removed"),
        "{said}"
    );
    assert!(children::get(&hub, child).unwrap().is_none());
    assert!(children::guardians_of(&hub, child).unwrap().is_empty());

    let verify = ok(d, &["audit", "verify"], "");
    assert!(verify.starts_with("audit log intact"), "{verify}");
}

#[test]
fn a_password_on_stdin_is_its_first_line_and_blank_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = |phone: &'static str| ["admin", "add", "--name", "A", "--phone", phone];

    // A second line is not part of the password.
    ok(
        d,
        &add("+34600000001"),
        &format!("{PASSWORD}\nsomething else\n"),
    );
    // The last line need not end with a newline, and Windows line endings are fine.
    ok(d, &add("+34600000002"), PASSWORD);
    ok(d, &add("+34600000003"), &format!("{PASSWORD}\r\n"));

    let opened = Hub::open(d, Arc::new(SystemClock)).unwrap();
    for phone in ["+34600000001", "+34600000002", "+34600000003"] {
        assert!(
            opened
                .accounts
                .check_login(phone, PASSWORD)
                .unwrap()
                .is_some(),
            "{phone} cannot log in with the first line"
        );
    }
    let both_lines = format!("{PASSWORD}\nsomething else");
    assert!(opened
        .accounts
        .check_login("+34600000001", &both_lines)
        .unwrap()
        .is_none());

    // Twelve spaces are long enough but no password; nothing is no password.
    for (stdin, message) in [
        ("            \n", "empty or only spaces"),
        (" \t \nthe real one on line two\n", "empty or only spaces"),
        ("\n", "empty or only spaces"),
        ("", "no password on stdin"),
    ] {
        let output = hub(d, &add("+34600000009"), stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stdin:?} accepted");
        assert!(stderr.contains(message), "{stdin:?}: {stderr}");
    }
    assert!(opened
        .accounts
        .account_by_phone("+34600000009")
        .unwrap()
        .is_none());
}

#[test]
fn the_help_says_what_classroom_and_erase_do_now() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let output = hub(dir.path(), args, "");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().replace('\n', " ")
    };

    // A parent sees photos only through linked children, whatever --classroom says.
    let parent = help(&["parent", "add", "--help"]);
    assert!(!parent.contains("first version"), "{parent}");
    assert!(!parent.contains("Lists this classroom"), "{parent}");
    assert!(parent.contains("guardian link"), "{parent}");

    let erase = help(&["child", "erase", "--help"]);
    let erase = erase.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        erase.contains("deletes every photo in which the child is the only named child"),
        "{erase}"
    );
}

#[test]
fn people_commands_refuse_bad_input_with_a_message_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["classroom", "add", "Sunflowers"], "");
    ok(
        d,
        &["parent", "add", "--name", "G", "--phone", "+34600000003"],
        &format!("{PASSWORD}\n"),
    );

    let cases: [(&[&str], &str, &str); 5] = [
        (
            &["admin", "add", "--name", "A", "--phone", "+34600000001"],
            "short\n",
            "too short",
        ),
        (
            &[
                "teacher",
                "add",
                "--name",
                "T",
                "--phone",
                "+34600000003",
                "--classroom",
                "Sunflowers",
            ],
            PASSWORD,
            "already belongs to an account (role: guardian)",
        ),
        (
            &["child", "add", "--classroom", "Roses", "--name", "Leo"],
            "",
            "Roses",
        ),
        (
            &[
                "guardian",
                "link",
                "--phone",
                "+34600000003",
                "--child",
                "leo",
            ],
            "",
            "not a child id",
        ),
        (
            &[
                "guardian",
                "link",
                "--phone",
                "+34600000003",
                "--child",
                "7f1c1a52-8d59-4b6e-a3c4-1d9b0f1e2a3b",
            ],
            "",
            "no child has id",
        ),
    ];
    for (args, stdin, message) in cases {
        let output = hub(d, args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
