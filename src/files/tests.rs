use super::*;
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

#[test]
fn web_users_from_a_file() {
    fn check(content: &str, expected: Result<&[&str], &str>) {
        let path = testing::file("files-web-users", content.as_bytes());
        let got = read_web_users(&path, "WEB_BASIC_AUTH_FILE").map_err(|e| e.to_string());
        let expected = expected
            .map(|users| users.iter().map(|u| base64(u.as_bytes())).collect())
            .map_err(|e| e.replace("<file>", &path.display().to_string()));
        assert_eq!(got, expected, "{content:?}");
    }
    check("prometheus:s3cret\n", Ok(&["prometheus:s3cret"]));
    check(
        "# who may scrape\r\n\r\nprometheus:old pass:word \r\nprometheus:new\n  \nme:x",
        Ok(&["prometheus:old pass:word ", "prometheus:new", "me:x"]),
    );
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
