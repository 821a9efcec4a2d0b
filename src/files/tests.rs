use super::*;
use crate::password;
use crate::testing;

#[test]
fn base64_of_rfc_4648_and_7617() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
        ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ("test:123\u{a3}", "dGVzdDoxMjPCow=="),
    ] {
        assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
    }
    assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0xfc]), "//79/A==");
}

#[test]
fn credentials_from_files() {
    fn check(auth: &Auth, content: &[u8], expected: Result<&str, &str>) {
        std::fs::write(auth.file(), content).unwrap();
        let got = read_credentials(auth, "SETTING").map_err(|e| e.to_string());
        let path = auth.file().display().to_string();
        let expected = expected
            .map(String::from)
            .map_err(|e| format!("SETTING: {path}{e}"));
        assert_eq!(got, expected, "{content:?}");
    }
    let bearer = Auth::Bearer {
        token_file: testing::file("files-bearer", b""),
    };
    check(
        &bearer,
        b"abc.DEF-123_~+/==\n",
        Ok("Bearer abc.DEF-123_~+/=="),
    );
    check(&bearer, b"  tok\r\n\r\n", Ok("Bearer tok"));
    check(&bearer, b"tok", Ok("Bearer tok"));
    let many = " has more than a token in it (spaces, line breaks or non-ASCII characters); \
                write the token alone";
    check(&bearer, b"one two\n", Err(many));
    check(&bearer, b"one\ntwo\n", Err(many));
    check(&bearer, "t\u{f6}k".as_bytes(), Err(many));
    check(&bearer, b"\n", Err(" is empty; write the token into it"));
    let basic = Auth::Basic {
        user: "Aladdin".into(),
        password_file: testing::file("files-basic", b""),
    };
    check(
        &basic,
        b"open sesame\n",
        Ok("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
    );
    check(
        &basic,
        b"open sesame",
        Ok("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
    );
    check(&basic, b" pass \r\n", Ok("Basic QWxhZGRpbjogcGFzcyA="));
    check(&basic, b"\n", Err(" is empty; write the password into it"));
    let missing = Auth::Bearer {
        token_file: "/nonexistent/token".into(),
    };
    assert_eq!(
        read_credentials(&missing, "TARGET_BEARER_TOKEN_FILE").map_err(|e| e.to_string()),
        Err("TARGET_BEARER_TOKEN_FILE: /nonexistent/token: cannot read it: No such file or directory (os error 2)".into())
    );
}

/// The users as `user:password`, with `bcrypt(COST)` for a hash, and the plain-text lines.
fn listed(users: &Users) -> (Vec<String>, Vec<usize>) {
    let list = users
        .list
        .iter()
        .map(|(user, stored)| {
            let user = String::from_utf8_lossy(user);
            match stored {
                Stored::Plain(password) => format!("{user}:{}", String::from_utf8_lossy(password)),
                Stored::Bcrypt(hash) => format!("{user}:bcrypt({})", hash.cost),
            }
        })
        .collect();
    (list, users.plain_lines.clone())
}

// `htpasswd -nbB -C 4 prometheus s3cret`, `htpasswd -nbB -C 5 other pw`.
const PROMETHEUS_HASH: &str = "$2y$04$ZTFqrCsxTsuiNrGzgxVuK.WkoKsZ4vpcPy4DO4ipK3.3Y6KnlZKBO";
const OTHER_HASH: &str = "$2y$05$bnQIKakNGHd.oiZkeuOiZu4Pqo7nfnlY9c9yyitS6tm5Yn4sOMHma";

#[test]
fn web_users_from_a_file() {
    fn check(content: &str, expected: Result<(&[&str], &[usize]), &str>) {
        let path = testing::file("files-web-users", content.as_bytes());
        let got = read_web_users(&path, "WEB_BASIC_AUTH_FILE")
            .map(|users| listed(&users))
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|(users, lines)| {
                (
                    users.iter().map(|u| u.to_string()).collect(),
                    lines.to_vec(),
                )
            })
            .map_err(|e| e.replace("<file>", &path.display().to_string()));
        assert_eq!(got, expected, "{content:?}");
    }
    check("prometheus:s3cret\n", Ok((&["prometheus:s3cret"], &[1])));
    check(
        "# who may scrape\r\n\r\nprometheus:old pass:word \r\nprometheus:new\n  \nme:x",
        Ok((
            &["prometheus:old pass:word ", "prometheus:new", "me:x"],
            &[3, 4, 6],
        )),
    );
    check(
        &format!("# htpasswd -B\nprometheus:{PROMETHEUS_HASH}\nplain:text\nother:{OTHER_HASH}\r\n"),
        Ok((
            &["prometheus:bcrypt(4)", "plain:text", "other:bcrypt(5)"],
            &[3],
        )),
    );
    check(
        &format!("a:{}", PROMETHEUS_HASH.replace("$2y$", "$2b$")),
        Ok((&["a:bcrypt(4)"], &[])),
    );
    check(
        &format!("a:{}", PROMETHEUS_HASH.replace("$04$", "$13$")),
        Err(
            "WEB_BASIC_AUTH_FILE: <file>: line 1: bcrypt cost 13 is more than 12: each check \
             would take 2x as long as at cost 12; hash the password again with htpasswd -B -C 12 \
             (or less)",
        ),
    );
    check(
        &format!("a:b\nc:{}", &PROMETHEUS_HASH[..50]),
        Err(
            "WEB_BASIC_AUTH_FILE: <file>: line 2: not a bcrypt hash ($2y$, two digits of cost, \
             $, then 53 characters); write it with htpasswd -B",
        ),
    );
    for other in [
        "$apr1$abc$def",
        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "$6$salt$hash",
    ] {
        check(
            &format!("a:{other}"),
            Err(
                "WEB_BASIC_AUTH_FILE: <file>: line 1: a password hash of a kind not supported \
                 (MD5, SHA); hash it with htpasswd -B (bcrypt)",
            ),
        );
    }
    check(
        "",
        Err("WEB_BASIC_AUTH_FILE: <file> has no user; add a line user:password"),
    );
    check(
        "# nobody\n",
        Err("WEB_BASIC_AUTH_FILE: <file> has no user; add a line user:password"),
    );
    check(
        "a:b\njust-a-password\n",
        Err("WEB_BASIC_AUTH_FILE: <file>: line 2: no colon; write user:password"),
    );
    check(
        ":secret",
        Err("WEB_BASIC_AUTH_FILE: <file>: line 1: the user or the password is empty; write user:password"),
    );
    check(
        "user:",
        Err("WEB_BASIC_AUTH_FILE: <file>: line 1: the user or the password is empty; write user:password"),
    );
    check(
        "user:pass\u{1b}word",
        Err("WEB_BASIC_AUTH_FILE: <file>: line 1: a control character; write user:password on one line"),
    );
}

#[test]
fn base64_decoding_takes_one_spelling_per_value() {
    for input in [
        "",
        "f",
        "fo",
        "foo",
        "foobar",
        "Aladdin:open sesame",
        "test:123\u{a3}",
    ] {
        assert_eq!(
            unbase64(base64(input.as_bytes()).as_bytes()).as_deref(),
            Some(input.as_bytes())
        );
    }
    assert_eq!(
        unbase64(b"//79/A==").as_deref(),
        Some(&[0xff, 0xfe, 0xfd, 0xfc][..])
    );
    for bad in [
        "Zg", "Zg=", "Zh==", "Zm9=", "Zg==Zg==", "Z===", "Zm9v!A==", "Zm 9v", "====",
    ] {
        assert_eq!(unbase64(bad.as_bytes()), None, "{bad}");
    }
}

/// A users file and what checks against it cost: the bcrypt runs of each check, by cost.
fn checked(users: &WebUsers, user: &str, password: &str) -> (bool, Vec<u32>) {
    password::RUNS.with(|runs| runs.borrow_mut().clear());
    let ok = users.check(&base64(format!("{user}:{password}").as_bytes()));
    (ok, password::RUNS.with(|runs| runs.borrow().clone()))
}

#[test]
fn a_check_costs_the_same_whoever_asks_and_is_remembered_once_right() {
    let path = testing::file(
        "files-check",
        format!("prometheus:{PROMETHEUS_HASH}\nplain:text\n").as_bytes(),
    );
    let users = WebUsers::open(path);
    // Right or wrong, known or not, hashed or plain: one bcrypt of the file's cost each.
    assert_eq!(checked(&users, "prometheus", "wrong"), (false, vec![4]));
    assert_eq!(checked(&users, "nobody", "s3cret"), (false, vec![4]));
    assert_eq!(checked(&users, "plain", "wrong"), (false, vec![4]));
    assert_eq!(checked(&users, "plain", "text"), (true, vec![4]));
    assert_eq!(checked(&users, "prometheus", "s3cret"), (true, vec![4]));
    // A right one is remembered: no bcrypt the next time; a wrong one never is.
    assert_eq!(checked(&users, "prometheus", "s3cret"), (true, vec![]));
    assert_eq!(checked(&users, "plain", "text"), (true, vec![]));
    assert_eq!(checked(&users, "prometheus", "wrong"), (false, vec![4]));
    assert_eq!(checked(&users, "prometheus", "s3cret "), (false, vec![4]));
    // Not base64 or without a colon: nothing to check.
    assert!(!users.check("not base64!"));
    assert!(!users.check(&base64(b"prometheus")));
}

#[test]
fn a_file_of_plain_passwords_needs_no_bcrypt() {
    let users = WebUsers::open(testing::file("files-plain", b"a:1\nb:2\n"));
    assert_eq!(checked(&users, "a", "1"), (true, vec![]));
    assert_eq!(checked(&users, "a", "2"), (false, vec![]));
    assert_eq!(checked(&users, "c", "1"), (false, vec![]));
    assert_eq!(users.count(), 2);
}

#[test]
fn the_remembered_checks_end_when_the_file_changes() {
    let path = testing::file(
        "files-forget",
        format!("prometheus:{PROMETHEUS_HASH}\nother:{OTHER_HASH}\n").as_bytes(),
    );
    let users = WebUsers::open(path.clone());
    assert!(checked(&users, "prometheus", "s3cret").0);
    assert_eq!(checked(&users, "prometheus", "s3cret"), (true, vec![]));
    // The user removed, the file read again at once: refused, not remembered.
    std::fs::write(&path, format!("other:{OTHER_HASH}\n")).unwrap();
    let reloaded = users.reload();
    assert!(reloaded.changed && !reloaded.failed, "{reloaded:?}");
    assert_eq!(checked(&users, "prometheus", "s3cret"), (false, vec![5]));
    assert_eq!(checked(&users, "other", "pw"), (true, vec![5]));
    // Many successful checks: at most MAX_PASSED remembered.
    let plain: String = (0..40).map(|i| format!("u{i}:p{i}\n")).collect();
    std::fs::write(&path, plain).unwrap();
    assert!(users.reload().changed);
    for i in 0..40 {
        assert!(users.check(&base64(format!("u{i}:p{i}").as_bytes())));
    }
    assert_eq!(lock(&users.state).passed.len(), MAX_PASSED);
}

#[test]
fn plain_lines_are_named_ten_at_most() {
    assert_eq!(lines(&[3]), "line 3");
    assert_eq!(lines(&[1, 3]), "lines 1, 3");
    let many: Vec<usize> = (1..=12).collect();
    assert_eq!(
        lines(&many),
        "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more"
    );
}
