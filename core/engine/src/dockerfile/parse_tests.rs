use super::*;

fn df(text: &str) -> Dockerfile {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> ParseError {
    match parse(text) {
        Ok(d) => panic!("{text:?} should be refused, got {d:#?}"),
        Err(e) => e,
    }
}

/// Asserts `text` is refused on `line` with a message containing `needle`.
fn refused(text: &str, line: usize, needle: &str) {
    let e = err(text);
    assert_eq!(e.line, line, "{text:?}: {e}");
    assert!(e.message.contains(needle), "{text:?}: {e} lacks {needle:?}");
}

/// The instructions of all stages, in order.
fn insts(text: &str) -> Vec<RawInstruction> {
    df(text)
        .stages
        .into_iter()
        .flat_map(|s| s.instructions)
        .collect()
}

/// The one instruction after `FROM a`.
fn one(body: &str) -> RawInstruction {
    let mut v = insts(&format!("FROM a\n{body}"));
    assert_eq!(v.len(), 1, "{body:?}: {v:#?}");
    v.remove(0)
}

fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn minimal_file() {
    let d = df("FROM busybox\nRUN echo hi\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(d.syntax, None);
    assert!(d.global_args.is_empty());
    assert_eq!(d.stages.len(), 1);
    let s = &d.stages[0];
    assert_eq!((s.base.as_str(), s.name.as_deref()), ("busybox", None));
    assert_eq!(s.from.line, 1);
    let run = &s.instructions[0];
    assert_eq!(run.line, 2);
    assert_eq!(run.keyword, "RUN");
    assert_eq!(run.args, "echo hi");
    assert_eq!(run.original, "RUN echo hi");
    assert!(run.flags.is_empty() && run.json.is_none() && run.heredocs.is_empty());
}

#[test]
fn keywords_are_case_insensitive_original_is_as_written() {
    let i = insts("from a\nrun  echo hi\nWorkDir /x");
    assert_eq!(i[0].keyword, "RUN");
    assert_eq!(i[0].args, "echo hi");
    assert_eq!(i[0].original, "run  echo hi");
    assert_eq!(i[1].keyword, "WORKDIR");
}

#[test]
fn unknown_instruction() {
    refused("FROM a\nFOO bar", 2, "unknown instruction: FOO");
    refused("FROM a\n\n  frob x", 3, "unknown instruction: FROB");
}

#[test]
fn only_arg_before_the_first_from() {
    refused("RUN x\nFROM a", 1, "RUN");
    let e = err("ARG V\nENV A=1\nFROM a");
    assert_eq!(e.line, 2);
    assert!(
        e.message.contains("ENV") && e.message.contains("FROM"),
        "{e}"
    );
}

#[test]
fn files_without_from() {
    refused("", 1, "no instructions");
    refused("# just\n\n# comments\n", 3, "no instructions");
    refused("ARG A=1\nARG B\n", 2, "no FROM");
}

#[test]
fn from_forms() {
    let d =
        df("FROM --platform=linux/arm64 golang:1.22 AS Build\nFROM build as Second\nFROM scratch");
    let s = &d.stages;
    assert_eq!(s[0].base, "golang:1.22");
    assert_eq!(s[0].name.as_deref(), Some("build"), "names are lowercased");
    assert_eq!(s[0].platform.as_deref(), Some("linux/arm64"));
    assert_eq!(s[0].from.flags, flags(&[("platform", "linux/arm64")]));
    assert_eq!(s[1].base, "build");
    assert_eq!(s[1].name.as_deref(), Some("second"), "`as` in any case");
    assert_eq!(s[1].platform, None);
    assert_eq!(
        (s[2].base.as_str(), s[2].name.as_deref()),
        ("scratch", None)
    );
    let d = df("ARG V=1\nFROM --platform=$BUILDPLATFORM busybox:${V}");
    assert_eq!(d.stages[0].base, "busybox:${V}", "left unexpanded");
    assert_eq!(d.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
}

#[test]
fn from_errors() {
    refused("FROM", 1, "FROM requires either one or three arguments");
    refused("FROM a b", 1, "one or three");
    refused("FROM a AS", 1, "one or three");
    refused("FROM a FOR b", 1, "one or three");
    refused("FROM a AS b c", 1, "one or three");
    refused("FROM a AS 1st", 1, "invalid name for build stage");
    refused("FROM a AS my/stage", 1, "invalid name");
    refused(
        "FROM a AS x\nRUN y\nFROM b AS X",
        3,
        "duplicate stage name \"x\"",
    );
    refused("FROM --os=linux a", 1, "--os");
}

#[test]
fn global_args_and_stages() {
    let d = df("ARG V=1\nARG BASE\nFROM busybox:${V} AS one\nARG V\nRUN a\nFROM one\nRUN b\n");
    let lines: Vec<usize> = d.global_args.iter().map(|a| a.line).collect();
    assert_eq!(lines, [1, 2]);
    assert_eq!(d.global_args[0].args, "V=1");
    assert_eq!(d.stages.len(), 2);
    let kw = |s: &Stage| -> Vec<(String, usize)> {
        s.instructions
            .iter()
            .map(|i| (i.keyword.clone(), i.line))
            .collect()
    };
    assert_eq!(kw(&d.stages[0]), [("ARG".into(), 4), ("RUN".into(), 5)]);
    assert_eq!(kw(&d.stages[1]), [("RUN".into(), 7)]);
    assert_eq!(d.stages[1].from.line, 6);
}

#[test]
fn continuation_lines_are_joined() {
    let text = "FROM a\nRUN echo a \\\n    b \\\n# a comment inside\n\t\n  c\nENV X=1\n";
    let i = insts(text);
    assert_eq!(i[0].args, "echo a     b   c");
    assert_eq!(i[0].original, "RUN echo a     b   c");
    assert_eq!(i[0].line, 2);
    assert_eq!((i[1].keyword.as_str(), i[1].line), ("ENV", 7));
    // Blanks after the escape still continue; an escaped escape does not.
    let i = insts("FROM a\nRUN a \\  \nb\nRUN c \\\\\nRUN d");
    assert_eq!(i[0].args, "a b");
    assert_eq!(i[1].args, "c \\\\");
    assert_eq!(i[2].line, 5);
    // A continuation at the end of the file just ends.
    assert_eq!(one("RUN x \\").args, "x");
}

#[test]
fn backtick_escape_directive() {
    let text = "# escape=`\nFROM mcr/windows\nRUN dir C:\\ `\n    && echo done\nCOPY a\\b C:\\dest\\\nUSER x\n";
    let d = df(text);
    assert_eq!(d.escape, '`');
    let i = &d.stages[0].instructions;
    assert_eq!(i[0].args, "dir C:\\     && echo done");
    assert_eq!(i[0].line, 3);
    assert_eq!(
        i[1].args, "a\\b C:\\dest\\",
        "a backslash no longer continues"
    );
    assert_eq!((i[1].line, i[2].line), (5, 6));
}

#[test]
fn directives_only_at_the_top() {
    let d = df("# syntax=docker/dockerfile:1\n#  ESCAPE = `\nFROM a\n");
    assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(d.escape, '`');
    // After a comment, a blank line or an instruction: just comments.
    for text in [
        "# hello\n# escape=`\nFROM a\nRUN a \\\n b\n",
        "\n# escape=`\nFROM a\nRUN a \\\n b\n",
        "FROM a\n# escape=`\nRUN a \\\n b\n",
    ] {
        let d = df(text);
        assert_eq!(d.escape, '\\', "{text:?}");
        assert_eq!(d.stages[0].instructions[0].args, "a  b", "{text:?}");
    }
    // An unknown directive ends the directives too.
    assert_eq!(df("# foo=bar\n# escape=`\nFROM a").escape, '\\');
    refused("# escape=`\n# escape=\\\nFROM a", 2, "only one escape");
    refused("# syntax=a\n# syntax=b\nFROM a", 2, "only one syntax");
    refused("# escape=x\nFROM a", 1, "invalid escape token");
}

#[test]
fn json_and_shell_forms() {
    let c = one(r#"CMD ["a", "b c"]"#);
    assert_eq!(c.json, Some(vec!["a".to_string(), "b c".to_string()]));
    assert_eq!(c.args, r#"["a", "b c"]"#);
    assert_eq!(one("CMD [not json").json, None);
    assert_eq!(one("CMD [not json").args, "[not json");
    assert_eq!(one("ENTRYPOINT echo [1]").json, None);
    assert_eq!(
        one(r#"VOLUME ["/data"]"#).json,
        Some(vec!["/data".to_string()])
    );
    assert_eq!(one(r#"ENV A=["x"]"#).json, None, "ENV has no exec form");
    refused("FROM a\nENTRYPOINT [\"x\", 1]", 2, "strings only");
    assert_eq!(one("CMD").args, "", "docker accepts an empty CMD");
    assert_eq!(one("SHELL [\"bash\", \"-c\"]").json.unwrap().len(), 2);
    refused("FROM a\nSHELL bash -c", 2, "JSON form");
}

#[test]
fn flags_are_leading_and_checked() {
    let r =
        one("RUN --mount=type=cache,target=/a --mount=type=secret,id=x --network=none echo --x=1");
    assert_eq!(
        r.flags,
        flags(&[
            ("mount", "type=cache,target=/a"),
            ("mount", "type=secret,id=x"),
            ("network", "none")
        ])
    );
    assert_eq!(r.args, "echo --x=1");
    assert_eq!(
        r.original,
        "RUN --mount=type=cache,target=/a --mount=type=secret,id=x --network=none echo --x=1"
    );
    let c = one("COPY --parents --link=false --from=build --exclude=*.md --exclude=x a/ /dst/");
    assert_eq!(
        c.flags,
        flags(&[
            ("parents", "true"),
            ("link", "false"),
            ("from", "build"),
            ("exclude", "*.md"),
            ("exclude", "x")
        ])
    );
    assert_eq!(c.args, "a/ /dst/");
    let a = one("ADD --keep-git-dir --checksum=sha256:abc --chown=1:2 --chmod=644 u /d");
    assert_eq!(a.flags.len(), 4);
    assert_eq!(a.flags[0], ("keep-git-dir".to_string(), "true".to_string()));
    let q = one("RUN --mount=\"type=bind,target=/a b\" ls");
    assert_eq!(q.flags, flags(&[("mount", "type=bind,target=/a b")]));
    assert_eq!(q.args, "ls");
    let h = one("HEALTHCHECK --interval=5s --retries=3 CMD true");
    assert_eq!(h.flags, flags(&[("interval", "5s"), ("retries", "3")]));
    assert_eq!(h.args, "CMD true");
    // `--` ends the flags.
    let d = one("RUN -- --not-a-flag");
    assert!(d.flags.is_empty());
    assert_eq!(d.args, "--not-a-flag");
}

#[test]
fn bad_flags() {
    refused("FROM a\nRUN --foo=bar x", 2, "--foo");
    let e = err("FROM a\nRUN --foo=bar x");
    assert!(e.message.contains("RUN"), "{e}");
    refused("FROM a\nENV --x=1 A=1", 2, "ENV takes no flags");
    refused(
        "FROM a\nCOPY --from a b",
        2,
        "Missing a value on flag: from",
    );
    refused(
        "FROM a\nCOPY --from=a --from=b x y",
        2,
        "Duplicate flag specified: from",
    );
    refused(
        "FROM a\nCOPY --link=maybe a b",
        2,
        "Expecting boolean value",
    );
    refused("FROM a\nADD --from=x a b", 2, "--from");
    refused("FROM a\nRUN --parents x", 2, "--parents");
}

#[test]
fn instructions_that_need_arguments() {
    refused("FROM a\nRUN", 2, "RUN requires at least one argument");
    refused("FROM a\nRUN   ", 2, "RUN requires at least one argument");
    refused(
        "FROM a\nRUN --network=none",
        2,
        "RUN requires at least one argument",
    );
    refused("FROM a\n\nUSER", 3, "USER requires exactly one argument");
    refused(
        "FROM a\nWORKDIR",
        2,
        "WORKDIR requires exactly one argument",
    );
    refused(
        "FROM a\nCOPY onlyone",
        2,
        "COPY requires at least two arguments",
    );
    refused("FROM a\nADD", 2, "ADD requires at least two arguments");
    refused("FROM a\nEXPOSE", 2, "EXPOSE requires at least one argument");
    refused("FROM a\nVOLUME", 2, "VOLUME requires at least one argument");
    refused("FROM a\nLABEL", 2, "LABEL requires at least one argument");
    refused(
        "FROM a\nSTOPSIGNAL",
        2,
        "STOPSIGNAL requires exactly one argument",
    );
    refused(
        "FROM a\nMAINTAINER",
        2,
        "MAINTAINER requires exactly one argument",
    );
    refused("ARG\nFROM a", 1, "ARG requires at least one argument");
    refused(
        "FROM a\nONBUILD",
        2,
        "ONBUILD requires at least one argument",
    );
    refused(
        "FROM a\nHEALTHCHECK",
        2,
        "HEALTHCHECK requires at least one argument",
    );
}

#[test]
fn env_label_arg_syntax() {
    refused("FROM a\nENV A", 2, "ENV must have two arguments");
    refused("FROM a\nENV A=1 B", 2, "can't find =");
    refused("FROM a\nLABEL =x", 2, "names can not be blank");
    refused("ARG =x\nFROM a", 1, "ARG names can not be blank");
    assert_eq!(one("ENV A one two").args, "A one two");
    assert_eq!(one("LABEL a=\"b c\" d=e").args, "a=\"b c\" d=e");
    assert_eq!(one("ARG A B=2").args, "A B=2");
}

#[test]
fn healthcheck_types() {
    assert_eq!(one("HEALTHCHECK NONE").args, "NONE");
    assert_eq!(one("HEALTHCHECK CMD [\"true\"]").args, "CMD [\"true\"]");
    refused("FROM a\nHEALTHCHECK NONE x", 2, "NONE takes no arguments");
    refused("FROM a\nHEALTHCHECK CMD", 2, "Missing command");
    refused("FROM a\nHEALTHCHECK RUN x", 2, "Unknown type");
}

#[test]
fn onbuild_keeps_its_trigger() {
    let o = one("ONBUILD RUN echo hi");
    assert_eq!(o.keyword, "ONBUILD");
    assert_eq!(o.args, "RUN echo hi");
    assert_eq!(o.original, "ONBUILD RUN echo hi");
    assert!(o.flags.is_empty());
    assert_eq!(one("onbuild copy --from=x a b").args, "copy --from=x a b");
    refused("FROM a\nONBUILD ONBUILD RUN x", 2, "Chaining ONBUILD");
    refused(
        "FROM a\nONBUILD FROM x",
        2,
        "FROM isn't allowed as an ONBUILD trigger",
    );
    refused(
        "FROM a\nONBUILD MAINTAINER me",
        2,
        "MAINTAINER isn't allowed",
    );
    refused("FROM a\nONBUILD FOO x", 2, "unknown instruction: FOO");
    refused("FROM a\nONBUILD RUN --bad=1 x", 2, "--bad");
}

#[test]
fn heredoc_single() {
    let i = insts("FROM a\nRUN <<EOF\necho hi\n# not a comment\nEOF\nENV A=1\n");
    assert_eq!(i[0].args, "<<EOF");
    assert_eq!(
        i[0].heredocs,
        [Heredoc {
            delimiter: "EOF".into(),
            content: "echo hi\n# not a comment\n".into(),
            expand: true,
            strip_tabs: false,
        }]
    );
    assert_eq!((i[1].keyword.as_str(), i[1].line), ("ENV", 6));
}

#[test]
fn heredoc_strip_tabs() {
    let i = insts("FROM a\nRUN <<-END\n\techo a\n\t\techo  b\n  spaces stay\n\tEND\nUSER x\n");
    let h = &i[0].heredocs[0];
    assert_eq!(h.delimiter, "END");
    assert!(h.strip_tabs && h.expand);
    assert_eq!(h.content, "echo a\necho  b\n  spaces stay\n");
    assert_eq!(i[1].line, 7);
    // Without `-`, a tab-indented terminator does not end the body.
    refused("FROM a\nRUN <<END\n\tEND\n", 2, "END");
}

#[test]
fn heredoc_quoted_delimiter() {
    for (marker, expand) in [
        ("'EOF'", false),
        ("\"EOF\"", false),
        ("E'O'F", false),
        ("EOF", true),
    ] {
        let i = one(&format!("RUN cat <<{marker}\necho $HOME\nEOF\n"));
        let h = &i.heredocs[0];
        assert_eq!(h.delimiter, "EOF", "{marker}");
        assert_eq!(h.expand, expand, "{marker}");
        assert_eq!(h.content, "echo $HOME\n");
    }
}

#[test]
fn heredoc_two_on_one_line() {
    let i = insts("FROM a\nRUN cat <<A >/a && cat <<-\"B\" >/b\na body\nA\n\tb body\n\tB\nCMD x\n");
    let h = &i[0].heredocs;
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].delimiter.as_str(), h[0].content.as_str()),
        ("A", "a body\n")
    );
    assert_eq!(
        (h[1].delimiter.as_str(), h[1].content.as_str()),
        ("B", "b body\n")
    );
    assert!(h[1].strip_tabs && !h[1].expand);
    assert_eq!((i[1].keyword.as_str(), i[1].line), ("CMD", 7));
}

#[test]
fn heredoc_copy_to_destination() {
    let i = insts("FROM a\nCOPY --chmod=644 <<EOF /etc/motd\nhello\nEOF\nRUN cat /etc/motd\n");
    assert_eq!(i[0].keyword, "COPY");
    assert_eq!(i[0].args, "<<EOF /etc/motd");
    assert_eq!(i[0].flags, flags(&[("chmod", "644")]));
    assert_eq!(i[0].heredocs[0].content, "hello\n");
    assert_eq!(i[1].line, 5);
    refused(
        "FROM a\nCOPY x <<EOF\nbody\nEOF\n",
        2,
        "heredoc as a destination",
    );
}

#[test]
fn heredoc_missing_terminator() {
    refused("FROM a\nRUN <<EOF\necho hi\n", 2, "\"EOF\"");
    refused("FROM a\nRUN <<A <<B\na\nA\nb\n", 2, "\"B\"");
}

#[test]
fn heredoc_only_where_docker_reads_them() {
    // Exec form, quoted markers and other instructions have none.
    let i = insts("FROM a\nRUN [\"sh\", \"<<EOF\"]\nRUN echo \"<<EOF\"\nCMD cat <<EOF\n");
    assert!(i.iter().all(|i| i.heredocs.is_empty()));
    assert_eq!(i.len(), 3);
    // `<<` needs a word after it; `a<<b` is not a marker.
    assert!(one("RUN echo a<<b").heredocs.is_empty());
    assert!(one("RUN echo << x").heredocs.is_empty());
}

#[test]
fn heredoc_after_continuation_and_in_onbuild() {
    let i = insts("FROM a\nRUN <<EOF \\\n  bash\nset -e\nEOF\nUSER x\n");
    assert_eq!(i[0].args, "<<EOF   bash");
    assert_eq!(i[0].heredocs[0].content, "set -e\n");
    assert_eq!(i[1].line, 6);
    let o = one("ONBUILD RUN <<EOF\necho later\nEOF\n");
    assert_eq!(o.args, "RUN <<EOF");
    assert_eq!(o.heredocs[0].content, "echo later\n");
    let fd = one("RUN python3 3<<PY\nprint(1)\nPY\n");
    assert_eq!(fd.heredocs[0].delimiter, "PY");
}

#[test]
fn crlf_line_endings() {
    let d = df("FROM a\r\nRUN echo a \\\r\n  b\r\nCOPY <<EOF /x\r\nhi\r\nEOF\r\n");
    let i = &d.stages[0].instructions;
    assert_eq!(i[0].args, "echo a   b");
    assert_eq!(i[1].heredocs[0].content, "hi\r\n");
    assert_eq!(i[1].line, 4);
}

#[test]
fn parse_error_display() {
    let e = err("FROM a\nBOGUS");
    assert_eq!(
        e.to_string(),
        "parse error on line 2: unknown instruction: BOGUS"
    );
}
